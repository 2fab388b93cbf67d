#include <sqlite3.h>
/* SQLITE_TRANSIENT is a macro Swift cannot import. */
static inline void (*tw_sqlite_transient(void))(void *) { return SQLITE_TRANSIENT; }
static inline void (*tw_sqlite_static(void))(void *) { return SQLITE_STATIC; }
