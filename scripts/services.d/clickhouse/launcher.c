/*
 * twice-clickhouse: runs ClickHouse's local mode from libchdb.so (the npm
 * package @chdb/lib-linux-x64-gnu) as a server for tests.
 *
 *   twice-clickhouse LIBCHDB.so CLICKHOUSE-LOCAL-ARGS...
 *
 * It dlopens the library and calls chdb_query_cmdline with argv[0] and the
 * remaining arguments, exactly as clickhouse-local would get them. The query
 * passed with --query is expected to open the listeners (SYSTEM START LISTEN
 * TCP/HTTP) and then keep running; when it returns, the process exits, with
 * status 1 and the error on stderr if the query failed.
 *
 * The package ships no header, so the three functions used are declared
 * here as chdb.h declares them:
 *   chdb_result *chdb_query_cmdline(int argc, char **argv);
 *   const char  *chdb_result_error(chdb_result *);
 *   void         chdb_destroy_query_result(chdb_result *);
 */
#include <dlfcn.h>
#include <stdio.h>

typedef void chdb_result;
typedef chdb_result *(*query_cmdline_fn)(int, char **);
typedef const char *(*result_error_fn)(chdb_result *);

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: %s LIBCHDB.so [clickhouse-local args...]\n", argv[0]);
		return 2;
	}
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		fprintf(stderr, "twice-clickhouse: %s\n", dlerror());
		return 2;
	}
	query_cmdline_fn query = (query_cmdline_fn)dlsym(lib, "chdb_query_cmdline");
	result_error_fn error = (result_error_fn)dlsym(lib, "chdb_result_error");
	if (query == NULL || error == NULL) {
		fprintf(stderr, "twice-clickhouse: %s lacks chdb_query_cmdline or chdb_result_error\n", argv[1]);
		return 2;
	}
	/* clickhouse-local's argv: our argv[0], then everything after the library. */
	argv[1] = argv[0];
	chdb_result *res = query(argc - 1, argv + 1);
	if (res == NULL) {
		fprintf(stderr, "twice-clickhouse: chdb_query_cmdline returned no result\n");
		return 1;
	}
	const char *msg = error(res);
	if (msg != NULL && msg[0] != '\0') {
		fprintf(stderr, "twice-clickhouse: %s\n", msg);
		return 1;
	}
	return 0;
}
