/*-------------------------------------------------------------------------
 *
 * redis_idem.c
 *		Baseline R of the benchmarks: the "two-system" idempotency that many
 *		teams run today, a Redis key in front of a PostgreSQL write.
 *
 * Per request with idempotency key K (backend "redis", the default):
 *
 *	 1. Redis  SET idem:K "in-progress" NX EX ttl
 *		nil (the key exists): GET idem:K
 *			a stored result       -> replay it (HTTP 200)
 *			"in-progress"         -> conflict (HTTP 409), counted
 *			nil (expired between) -> start again at 1
 *	 2. PostgreSQL, autocommit, prepared (PQexecPrepared):
 *			INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id
 *		(on an error: DEL idem:K, as a careful application does, and fail)
 *	 3. Redis  SET idem:K '{"rows":[{"id":N}],"command":"INSERT","row_count":1}' EX ttl
 *		and answer HTTP 201 with that result.
 *
 * The two writes in 2 and 3 are not atomic: a client that dies after 2
 * commits and before 3 leaves "in-progress" in Redis (every retry gets 409
 * until the TTL ends) and then a retry runs the INSERT a second time.
 * --crash-after-commit injects exactly that crash (see redis_fault_demo.sh);
 * --crash-before-commit dies after the SET NX, before the INSERT (the key
 * stays "in-progress" until the TTL, then a retry runs the INSERT once).
 *
 * Backend "idem" (--backend idem) sends the same request through the
 * extension instead, for the fault demo's other half and as a cross-check:
 *		SELECT idem_execute($1, 'INSERT INTO payments(customer, amount)
 *		        VALUES ($1, $2) RETURNING id', $2::text, $3::numeric)
 * (--mode once runs it inside BEGIN ... COMMIT so a crash can be injected before
 * or after the COMMIT.)
 *
 * Modes:
 *	 --mode new      every request a fresh key; --threads N for --seconds S
 *	 --mode replay   keys drawn at random from PREFIX0 .. PREFIX(keys-1),
 *	                 which --mode preload stored first; --threads, --seconds
 *	 --mode preload  run the new-key path once for each of those --keys keys
 *	 --mode once     one request for --key K, printing what the user gets:
 *	                 "status=201 created id=N", "status=200 replayed id=N" or
 *	                 "status=409 in-progress"; with --crash-after-commit or
 *	                 --crash-before-commit it _exit()s with status 3 at that
 *	                 point instead of answering (redis: after the PostgreSQL
 *	                 INSERT committed, before the Redis SET of the result; or
 *	                 after the SET NX, before the INSERT; idem: after COMMIT,
 *	                 before answering; or after idem_execute, before COMMIT)
 *
 * Each thread has its own PostgreSQL connection (libpq, conninfo from
 * --conninfo or the PG* environment) and its own Redis connection
 * (--redis-socket PATH, or --redis-host/--redis-port).  Latencies of every
 * request are kept in memory and sorted at the end.  new/replay/preload
 * print one line:
 *	 mode=new backend=redis threads=4 seconds=10.001 requests=N tps=T
 *	 median_ms=M p99_ms=P created=C replayed=R conflicts=X errors=0
 * Exit status: 0 ok, 1 error, 2 usage, 3 injected crash.
 *
 * Built by bench/redis/Makefile (gcc -O2 -Wall -Wextra -Werror, libpq and
 * hiredis from Debian: libpq-dev, libhiredis-dev).
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#define IN_PROGRESS "in-progress"
#define INSERT_SQL "INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id"
#define IDEM_SQL "SELECT idem_execute($1::text, '" INSERT_SQL "', $2::text, $3::numeric)"
#define CRASH_EXIT 3

typedef enum
{
	MODE_NEW,
	MODE_REPLAY,
	MODE_PRELOAD,
	MODE_ONCE
} Mode;

typedef enum
{
	BACKEND_REDIS,
	BACKEND_IDEM
} Backend;

typedef enum
{
	OUT_ERROR = -1,
	OUT_CREATED = 0,
	OUT_REPLAYED,
	OUT_CONFLICT
} Outcome;

static struct
{
	Mode		mode;
	Backend		backend;
	int			threads;
	double		seconds;
	long		keys;
	const char *prefix;
	const char *key;
	int			ttl;
	const char *conninfo;
	const char *redis_socket;
	const char *redis_host;
	int			redis_port;
	const char *customer;
	const char *amount;
	bool		crash_after_commit;
	bool		crash_before_commit;
}			opt = {
	.mode = MODE_NEW,
	.backend = BACKEND_REDIS,
	.threads = 4,
	.seconds = 10,
	.keys = 10000,
	.prefix = NULL,
	.key = NULL,
	.ttl = 86400,
	.conninfo = "",
	.redis_socket = NULL,
	.redis_host = "127.0.0.1",
	.redis_port = 6379,
	.customer = NULL,
	.amount = "100.00",
};

typedef struct
{
	int			id;
	pthread_t	tid;
	PGconn	   *pg;
	redisContext *rd;
	uint64_t	rng;
	long		key_lo;			/* preload: keys [key_lo, key_hi) */
	long		key_hi;
	int64_t    *lat;			/* per-request latency, ns */
	size_t		nlat;
	size_t		caplat;
	long		created;
	long		replayed;
	long		conflicts;
	long		errors;
	char		customer[64];
	char		last_result[512];
} Worker;

static atomic_int stop_flag;
static atomic_int error_flag;
static pthread_barrier_t start_barrier;
static char run_prefix[128];

static void
fail(Worker *w, const char *fmt,...)
{
	va_list		ap;

	if (w)
		fprintf(stderr, "redis_idem: thread %d: ", w->id);
	else
		fprintf(stderr, "redis_idem: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (w)
		w->errors++;
	atomic_store(&error_flag, 1);
	atomic_store(&stop_flag, 1);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t
xorshift(uint64_t *s)
{
	uint64_t	x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ------------------------------------------------------------------------
 * connections
 * ------------------------------------------------------------------------
 */
static PGconn *
pg_connect(Worker *w)
{
	PGconn	   *pg = PQconnectdb(opt.conninfo);
	PGresult   *res;
	const char *name = opt.backend == BACKEND_REDIS ? "ins" : "idem";
	const char *sql = opt.backend == BACKEND_REDIS ? INSERT_SQL : IDEM_SQL;

	if (PQstatus(pg) != CONNECTION_OK)
	{
		fail(w, "PostgreSQL connection failed: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return NULL;
	}
	res = PQprepare(pg, name, sql, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fail(w, "PREPARE %s failed: %s", name, PQerrorMessage(pg));
		PQclear(res);
		PQfinish(pg);
		return NULL;
	}
	PQclear(res);
	return pg;
}

static redisContext *
redis_connect(Worker *w)
{
	redisContext *rd;

	if (opt.redis_socket)
		rd = redisConnectUnix(opt.redis_socket);
	else
		rd = redisConnect(opt.redis_host, opt.redis_port);
	if (rd == NULL || rd->err)
	{
		fail(w, "Redis connection to %s failed: %s",
			 opt.redis_socket ? opt.redis_socket : opt.redis_host,
			 rd ? rd->errstr : "out of memory");
		if (rd)
			redisFree(rd);
		return NULL;
	}
	return rd;
}

/* ------------------------------------------------------------------------
 * the result JSON, as an application would build it from the RETURNING rows:
 * {"rows":[{"id":42}],"command":"INSERT","row_count":1}
 * ------------------------------------------------------------------------
 */
typedef struct
{
	char	   *buf;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_put(Buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 256;

		while (b->len + n + 1 > cap)
			cap *= 2;
		b->buf = realloc(b->buf, cap);
		if (!b->buf)
		{
			fprintf(stderr, "redis_idem: out of memory\n");
			exit(1);
		}
		b->cap = cap;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

static void
buf_puts(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void
buf_json_string(Buf *b, const char *s)
{
	buf_put(b, "\"", 1);
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;
		char		esc[8];

		if (c == '"' || c == '\\')
		{
			esc[0] = '\\';
			esc[1] = (char) c;
			buf_put(b, esc, 2);
		}
		else if (c < 0x20)
		{
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_puts(b, esc);
		}
		else
			buf_put(b, s, 1);
	}
	buf_put(b, "\"", 1);
}

/* type OIDs written as bare JSON numbers / booleans */
#define INT2OID 21
#define INT4OID 23
#define INT8OID 20
#define NUMERICOID 1700
#define FLOAT4OID 700
#define FLOAT8OID 701
#define BOOLOID 16

static void
result_json(PGresult *res, Buf *b)
{
	int			nrows = PQntuples(res);
	int			ncols = PQnfields(res);
	const char *status = PQcmdStatus(res);
	const char *sp = strchr(status, ' ');
	int			r,
				c;

	b->len = 0;
	buf_puts(b, "{\"rows\":[");
	for (r = 0; r < nrows; r++)
	{
		if (r > 0)
			buf_puts(b, ",");
		buf_puts(b, "{");
		for (c = 0; c < ncols; c++)
		{
			unsigned int type = PQftype(res, c);

			if (c > 0)
				buf_puts(b, ",");
			buf_json_string(b, PQfname(res, c));
			buf_puts(b, ":");
			if (PQgetisnull(res, r, c))
				buf_puts(b, "null");
			else if (type == BOOLOID)
				buf_puts(b, PQgetvalue(res, r, c)[0] == 't' ? "true" : "false");
			else if (type == INT2OID || type == INT4OID || type == INT8OID ||
					 type == NUMERICOID || type == FLOAT4OID || type == FLOAT8OID)
				buf_puts(b, PQgetvalue(res, r, c));
			else
				buf_json_string(b, PQgetvalue(res, r, c));
		}
		buf_puts(b, "}");
	}
	buf_puts(b, "],\"command\":");
	{
		char		word[32];
		size_t		n = sp ? (size_t) (sp - status) : strlen(status);

		if (n >= sizeof(word))
			n = sizeof(word) - 1;
		memcpy(word, status, n);
		word[n] = '\0';
		buf_json_string(b, word);
	}
	buf_puts(b, ",\"row_count\":");
	buf_puts(b, PQcmdTuples(res)[0] ? PQcmdTuples(res) : "0");
	buf_puts(b, "}");
}

/* the id in {"rows":[{"id":N}] ...}, for the once mode's answer */
static long long
result_id(const char *json)
{
	const char *p = strstr(json, "\"id\":");

	if (!p)
		return -1;
	p += 5;
	while (*p == ' ')
		p++;
	return strtoll(p, NULL, 10);
}

/* ------------------------------------------------------------------------
 * one request, Redis + PostgreSQL
 * ------------------------------------------------------------------------
 */
static Outcome
request_redis(Worker *w, const char *key, Buf *json)
{
	int			attempt;

	for (attempt = 0; attempt < 3; attempt++)
	{
		redisReply *rep;
		PGresult   *res;
		const char *params[2];
		bool		acquired;

		/* 1. claim the key */
		rep = redisCommand(w->rd, "SET idem:%s %s NX EX %d", key, IN_PROGRESS, opt.ttl);
		if (rep == NULL)
		{
			fail(w, "Redis SET NX failed: %s", w->rd->errstr);
			return OUT_ERROR;
		}
		if (rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0)
			acquired = true;
		else if (rep->type == REDIS_REPLY_NIL)
			acquired = false;
		else
		{
			fail(w, "Redis SET NX: unexpected reply type %d (%s)", rep->type,
				 rep->type == REDIS_REPLY_ERROR ? rep->str : "");
			freeReplyObject(rep);
			return OUT_ERROR;
		}
		freeReplyObject(rep);

		if (!acquired)
		{
			/* the key exists: a stored result, or someone is working on it */
			Outcome		out;

			rep = redisCommand(w->rd, "GET idem:%s", key);
			if (rep == NULL)
			{
				fail(w, "Redis GET failed: %s", w->rd->errstr);
				return OUT_ERROR;
			}
			if (rep->type == REDIS_REPLY_NIL)
			{
				/* expired between SET NX and GET: claim it again */
				freeReplyObject(rep);
				continue;
			}
			if (rep->type != REDIS_REPLY_STRING)
			{
				fail(w, "Redis GET: unexpected reply type %d", rep->type);
				freeReplyObject(rep);
				return OUT_ERROR;
			}
			if (strcmp(rep->str, IN_PROGRESS) == 0)
				out = OUT_CONFLICT;
			else
			{
				json->len = 0;
				buf_put(json, rep->str, rep->len);
				out = OUT_REPLAYED;
			}
			freeReplyObject(rep);
			return out;
		}

		/* the other window: claimed in Redis, nothing written yet */
		if (opt.crash_before_commit)
		{
			fprintf(stderr, "redis_idem: injected crash after the Redis SET NX, "
					"before the PostgreSQL INSERT\n");
			fflush(stderr);
			_exit(CRASH_EXIT);
		}

		/* 2. the write, autocommit */
		params[0] = w->customer;
		params[1] = opt.amount;
		res = PQexecPrepared(w->pg, "ins", 2, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fail(w, "INSERT failed: %s", PQerrorMessage(w->pg));
			PQclear(res);
			/* release the claim so that a retry can run */
			rep = redisCommand(w->rd, "DEL idem:%s", key);
			if (rep)
				freeReplyObject(rep);
			return OUT_ERROR;
		}
		result_json(res, json);
		PQclear(res);

		/* the window: committed in PostgreSQL, not yet recorded in Redis */
		if (opt.crash_after_commit)
		{
			fprintf(stderr, "redis_idem: injected crash after the PostgreSQL commit, "
					"before the Redis SET of the result (committed: %s)\n", json->buf);
			fflush(stderr);
			_exit(CRASH_EXIT);
		}

		/* 3. store the result */
		rep = redisCommand(w->rd, "SET idem:%s %b EX %d", key, json->buf, json->len, opt.ttl);
		if (rep == NULL || rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "OK") != 0)
		{
			fail(w, "Redis SET of the result failed: %s",
				 rep == NULL ? w->rd->errstr :
				 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
			if (rep)
				freeReplyObject(rep);
			return OUT_ERROR;
		}
		freeReplyObject(rep);
		return OUT_CREATED;
	}
	fail(w, "key %s kept expiring between SET NX and GET", key);
	return OUT_ERROR;
}

/* ------------------------------------------------------------------------
 * one request through idem_execute
 * ------------------------------------------------------------------------
 */
static bool
pg_command(Worker *w, const char *sql)
{
	PGresult   *res = PQexec(w->pg, sql);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		fail(w, "%s failed: %s", sql, PQerrorMessage(w->pg));
	PQclear(res);
	return ok;
}

static Outcome
request_idem(Worker *w, const char *key, Buf *json, bool explicit_xact)
{
	const char *params[3];
	PGresult   *res;
	const char *val;
	Outcome		out;

	if (explicit_xact && !pg_command(w, "BEGIN"))
		return OUT_ERROR;
	params[0] = key;
	params[1] = w->customer;
	params[2] = opt.amount;
	res = PQexecPrepared(w->pg, "idem", 3, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		fail(w, "idem_execute failed: %s", PQerrorMessage(w->pg));
		PQclear(res);
		return OUT_ERROR;
	}
	val = PQgetvalue(res, 0, 0);
	out = strstr(val, "\"replayed\": true") ? OUT_REPLAYED : OUT_CREATED;
	json->len = 0;
	buf_puts(json, val);
	PQclear(res);

	if (explicit_xact)
	{
		if (opt.crash_before_commit)
		{
			fprintf(stderr, "redis_idem: injected crash after idem_execute, before COMMIT "
					"(the transaction saw: %s)\n", json->buf);
			fflush(stderr);
			_exit(CRASH_EXIT);
		}
		if (!pg_command(w, "COMMIT"))
			return OUT_ERROR;
		if (opt.crash_after_commit)
		{
			fprintf(stderr, "redis_idem: injected crash after COMMIT, before answering "
					"(committed: %s)\n", json->buf);
			fflush(stderr);
			_exit(CRASH_EXIT);
		}
	}
	return out;
}

static Outcome
request(Worker *w, const char *key, Buf *json, bool explicit_xact)
{
	if (opt.backend == BACKEND_REDIS)
		return request_redis(w, key, json);
	return request_idem(w, key, json, explicit_xact);
}

/* ------------------------------------------------------------------------
 * benchmark threads
 * ------------------------------------------------------------------------
 */
static void
record(Worker *w, Outcome out, int64_t ns)
{
	if (w->nlat == w->caplat)
	{
		w->caplat = w->caplat ? w->caplat * 2 : 65536;
		w->lat = realloc(w->lat, w->caplat * sizeof(int64_t));
		if (!w->lat)
		{
			fprintf(stderr, "redis_idem: out of memory\n");
			exit(1);
		}
	}
	w->lat[w->nlat++] = ns;
	switch (out)
	{
		case OUT_CREATED:
			w->created++;
			break;
		case OUT_REPLAYED:
			w->replayed++;
			break;
		case OUT_CONFLICT:
			w->conflicts++;
			break;
		case OUT_ERROR:
			break;
	}
}

static void *
worker_main(void *arg)
{
	Worker	   *w = arg;
	Buf			json = {0};
	char		key[256];
	long		seq = 0;

	pthread_barrier_wait(&start_barrier);
	if (opt.mode == MODE_PRELOAD)
	{
		for (long k = w->key_lo; k < w->key_hi && !atomic_load(&stop_flag); k++)
		{
			int64_t		t0 = now_ns();
			Outcome		out;

			snprintf(key, sizeof(key), "%s%ld", opt.prefix, k);
			out = request(w, key, &json, false);
			if (out == OUT_ERROR)
				break;
			record(w, out, now_ns() - t0);
		}
	}
	else
	{
		while (!atomic_load(&stop_flag))
		{
			int64_t		t0 = now_ns();
			Outcome		out;

			if (opt.mode == MODE_NEW)
				snprintf(key, sizeof(key), "%st%d-%ld", run_prefix, w->id, seq++);
			else
				snprintf(key, sizeof(key), "%s%" PRIu64, opt.prefix,
						 xorshift(&w->rng) % (uint64_t) opt.keys);
			out = request(w, key, &json, false);
			if (out == OUT_ERROR)
				break;
			if (opt.mode == MODE_REPLAY && out == OUT_REPLAYED &&
				strncmp(json.buf, "{\"rows\":", 8) != 0 &&
				strncmp(json.buf, "{\"rows\": ", 9) != 0)
			{
				fail(w, "replay of %s returned something that is not a result: %s",
					 key, json.buf);
				break;
			}
			record(w, out, now_ns() - t0);
		}
	}
	if (json.buf && json.len < sizeof(w->last_result))
		memcpy(w->last_result, json.buf, json.len + 1);
	free(json.buf);
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a;
	int64_t		y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

/* nearest-rank percentile of sorted v[0..n-1] */
static double
percentile_ms(const int64_t *v, size_t n, double p)
{
	size_t		rank;

	if (n == 0)
		return 0;
	rank = (size_t) (p * (double) n + 0.999999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double) v[rank - 1] / 1e6;
}

static int
run_bench(void)
{
	Worker	   *ws = calloc(opt.threads, sizeof(Worker));
	int64_t		t_start,
				t_end;
	size_t		total = 0;
	int64_t    *all;
	long		created = 0,
				replayed = 0,
				conflicts = 0,
				errors = 0;
	const char *mode_name = opt.mode == MODE_NEW ? "new" :
		opt.mode == MODE_REPLAY ? "replay" : "preload";
	int			i;

	if (!ws)
		return 1;
	pthread_barrier_init(&start_barrier, NULL, opt.threads + 1);
	for (i = 0; i < opt.threads; i++)
	{
		Worker	   *w = &ws[i];

		w->id = i;
		w->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t) (i + 1) * 0xBF58476D1CE4E5B9ULL) ^
			(uint64_t) now_ns();
		if (w->rng == 0)
			w->rng = 1;
		snprintf(w->customer, sizeof(w->customer), "%s",
				 opt.customer ? opt.customer : "cus_r");
		w->key_lo = opt.keys * i / opt.threads;
		w->key_hi = opt.keys * (i + 1) / opt.threads;
		if (!(w->pg = pg_connect(w)))
			return 1;
		if (opt.backend == BACKEND_REDIS && !(w->rd = redis_connect(w)))
			return 1;
	}
	for (i = 0; i < opt.threads; i++)
	{
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0)
		{
			fail(NULL, "pthread_create failed");
			return 1;
		}
	}
	pthread_barrier_wait(&start_barrier);
	t_start = now_ns();
	if (opt.mode != MODE_PRELOAD)
	{
		int64_t		t_stop = t_start + (int64_t) (opt.seconds * 1e9);

		while (!atomic_load(&stop_flag))
		{
			int64_t		left = t_stop - now_ns();
			struct timespec ts;

			if (left <= 0)
				break;
			if (left > 50000000)
				left = 50000000;	/* look at the error flag every 50 ms */
			ts.tv_sec = left / 1000000000;
			ts.tv_nsec = left % 1000000000;
			nanosleep(&ts, NULL);
		}
		atomic_store(&stop_flag, 1);
	}
	for (i = 0; i < opt.threads; i++)
		pthread_join(ws[i].tid, NULL);
	t_end = now_ns();

	for (i = 0; i < opt.threads; i++)
		total += ws[i].nlat;
	all = malloc((total ? total : 1) * sizeof(int64_t));
	if (!all)
		return 1;
	total = 0;
	for (i = 0; i < opt.threads; i++)
	{
		memcpy(all + total, ws[i].lat, ws[i].nlat * sizeof(int64_t));
		total += ws[i].nlat;
		created += ws[i].created;
		replayed += ws[i].replayed;
		conflicts += ws[i].conflicts;
		errors += ws[i].errors;
		PQfinish(ws[i].pg);
		if (ws[i].rd)
			redisFree(ws[i].rd);
		free(ws[i].lat);
	}
	qsort(all, total, sizeof(int64_t), cmp_i64);
	{
		double		secs = (double) (t_end - t_start) / 1e9;

		printf("mode=%s backend=%s threads=%d seconds=%.3f requests=%zu tps=%.1f "
			   "median_ms=%.3f p99_ms=%.3f created=%ld replayed=%ld conflicts=%ld errors=%ld\n",
			   mode_name, opt.backend == BACKEND_REDIS ? "redis" : "idem",
			   opt.threads, secs, total, secs > 0 ? (double) total / secs : 0.0,
			   percentile_ms(all, total, 0.5), percentile_ms(all, total, 0.99),
			   created, replayed, conflicts, errors);
	}
	free(all);
	free(ws);
	pthread_barrier_destroy(&start_barrier);
	return atomic_load(&error_flag) ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * --mode once: one request, the answer a user would get
 * ------------------------------------------------------------------------
 */
static int
run_once(void)
{
	Worker		w = {0};
	Buf			json = {0};
	Outcome		out;

	snprintf(w.customer, sizeof(w.customer), "%s", opt.customer ? opt.customer : "cus_r");
	if (!(w.pg = pg_connect(&w)))
		return 1;
	if (opt.backend == BACKEND_REDIS && !(w.rd = redis_connect(&w)))
		return 1;
	out = request(&w, opt.key, &json, true);
	switch (out)
	{
		case OUT_CREATED:
			printf("status=201 created id=%lld result=%s\n", result_id(json.buf), json.buf);
			break;
		case OUT_REPLAYED:
			printf("status=200 replayed id=%lld result=%s\n", result_id(json.buf), json.buf);
			break;
		case OUT_CONFLICT:
			printf("status=409 in-progress\n");
			break;
		case OUT_ERROR:
			break;
	}
	PQfinish(w.pg);
	if (w.rd)
		redisFree(w.rd);
	free(json.buf);
	return out == OUT_ERROR ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------
 */
static void
usage(FILE *f)
{
	fprintf(f,
			"usage: redis_idem [--mode new|replay|preload|once] [--backend redis|idem]\n"
			"                  [--threads N] [--seconds S] [--keys N] [--prefix P] [--key K]\n"
			"                  [--ttl SECONDS] [--conninfo STR]\n"
			"                  [--redis-socket PATH | --redis-host H --redis-port P]\n"
			"                  [--customer C] [--amount A]\n"
			"                  [--crash-after-commit] [--crash-before-commit]\n"
			"defaults: --mode new --backend redis --threads 4 --seconds 10 --keys 10000\n"
			"          --ttl 86400 --amount 100.00; PostgreSQL from the PG* environment\n");
}

static long
parse_long(const char *s, const char *what, long min, long max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < min || v > max)
	{
		fprintf(stderr, "redis_idem: invalid %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	enum
	{
		O_MODE = 256, O_BACKEND, O_THREADS, O_SECONDS, O_KEYS, O_PREFIX, O_KEY,
		O_TTL, O_CONNINFO, O_RSOCK, O_RHOST, O_RPORT, O_CUSTOMER, O_AMOUNT,
		O_CRASH_AFTER, O_CRASH_BEFORE, O_HELP
	};
	static const struct option longopts[] = {
		{"mode", required_argument, NULL, O_MODE},
		{"backend", required_argument, NULL, O_BACKEND},
		{"threads", required_argument, NULL, O_THREADS},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"keys", required_argument, NULL, O_KEYS},
		{"prefix", required_argument, NULL, O_PREFIX},
		{"key", required_argument, NULL, O_KEY},
		{"ttl", required_argument, NULL, O_TTL},
		{"conninfo", required_argument, NULL, O_CONNINFO},
		{"redis-socket", required_argument, NULL, O_RSOCK},
		{"redis-host", required_argument, NULL, O_RHOST},
		{"redis-port", required_argument, NULL, O_RPORT},
		{"customer", required_argument, NULL, O_CUSTOMER},
		{"amount", required_argument, NULL, O_AMOUNT},
		{"crash-after-commit", no_argument, NULL, O_CRASH_AFTER},
		{"crash-before-commit", no_argument, NULL, O_CRASH_BEFORE},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0}
	};
	int			c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case O_MODE:
				if (strcmp(optarg, "new") == 0)
					opt.mode = MODE_NEW;
				else if (strcmp(optarg, "replay") == 0)
					opt.mode = MODE_REPLAY;
				else if (strcmp(optarg, "preload") == 0)
					opt.mode = MODE_PRELOAD;
				else if (strcmp(optarg, "once") == 0)
					opt.mode = MODE_ONCE;
				else
				{
					fprintf(stderr, "redis_idem: unknown mode: %s\n", optarg);
					return 2;
				}
				break;
			case O_BACKEND:
				if (strcmp(optarg, "redis") == 0)
					opt.backend = BACKEND_REDIS;
				else if (strcmp(optarg, "idem") == 0)
					opt.backend = BACKEND_IDEM;
				else
				{
					fprintf(stderr, "redis_idem: unknown backend: %s\n", optarg);
					return 2;
				}
				break;
			case O_THREADS:
				opt.threads = (int) parse_long(optarg, "--threads", 1, 1024);
				break;
			case O_SECONDS:
				opt.seconds = (double) parse_long(optarg, "--seconds", 1, 86400);
				break;
			case O_KEYS:
				opt.keys = parse_long(optarg, "--keys", 1, 1000000000L);
				break;
			case O_PREFIX:
				opt.prefix = optarg;
				break;
			case O_KEY:
				opt.key = optarg;
				break;
			case O_TTL:
				opt.ttl = (int) parse_long(optarg, "--ttl", 1, 100000000L);
				break;
			case O_CONNINFO:
				opt.conninfo = optarg;
				break;
			case O_RSOCK:
				opt.redis_socket = optarg;
				break;
			case O_RHOST:
				opt.redis_host = optarg;
				break;
			case O_RPORT:
				opt.redis_port = (int) parse_long(optarg, "--redis-port", 1, 65535);
				break;
			case O_CUSTOMER:
				opt.customer = optarg;
				break;
			case O_AMOUNT:
				opt.amount = optarg;
				break;
			case O_CRASH_AFTER:
				opt.crash_after_commit = true;
				break;
			case O_CRASH_BEFORE:
				opt.crash_before_commit = true;
				break;
			case O_HELP:
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "redis_idem: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (opt.mode == MODE_ONCE && !opt.key)
	{
		fprintf(stderr, "redis_idem: --mode once needs --key\n");
		return 2;
	}
	if (opt.mode != MODE_ONCE && (opt.crash_after_commit || opt.crash_before_commit))
	{
		fprintf(stderr, "redis_idem: --crash-* only with --mode once\n");
		return 2;
	}
	if ((opt.mode == MODE_REPLAY || opt.mode == MODE_PRELOAD) && !opt.prefix)
	{
		fprintf(stderr, "redis_idem: --mode %s needs --prefix (the key set)\n",
				opt.mode == MODE_REPLAY ? "replay" : "preload");
		return 2;
	}
	if (opt.mode == MODE_PRELOAD && opt.keys < opt.threads)
		opt.threads = (int) opt.keys;
	/* fresh keys: unique per run even if Redis keeps earlier runs' keys */
	snprintf(run_prefix, sizeof(run_prefix), "%sn%ld.%d.",
			 opt.prefix ? opt.prefix : "", (long) time(NULL), (int) getpid());

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (opt.mode == MODE_ONCE)
		return run_once();
	return run_bench();
}
