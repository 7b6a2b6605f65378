// The storage schema, compiled into the binary from migrations/NNNN_*.sql.
//
//   auto applied = parley::ApplyMigrations(pool,
//   parley::storage::StorageMigrations());
#ifndef PARLEY_SERVICES_STORAGE_MIGRATIONS_H_
#define PARLEY_SERVICES_STORAGE_MIGRATIONS_H_

#include <vector>

#include "common/pg/pg_pool.h"

namespace parley::storage {

using ::parley::Migration;

// Every migration, in version order.
const std::vector<Migration>& StorageMigrations();

}  // namespace parley::storage

#endif  // PARLEY_SERVICES_STORAGE_MIGRATIONS_H_
