// parley: the command-line client. See `parley --help`.
#include <string>
#include <vector>

#include "services/client/cli.h"

int main(int argc, char** argv) {
  return parley::client::RunCli(
      std::vector<std::string>(argv + 1, argv + argc));
}
