/*-------------------------------------------------------------------------
 *
 * idempotency.h
 *	  Declarations shared by the idempotency extension's source files.
 *
 * src/idempotency.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_H
#define IDEMPOTENCY_H

#include "fmgr.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "citus.h"

/* SQLSTATEs of our own, in the implementation-defined class IK */
#define ERRCODE_IDEM_KEY_REUSED			MAKE_SQLSTATE('I','K','0','0','1')
#define ERRCODE_IDEM_KEY_IN_FLIGHT		MAKE_SQLSTATE('I','K','0','0','2')
#define ERRCODE_IDEM_RESULT_TOO_LARGE	MAKE_SQLSTATE('I','K','0','0','3')

#define IDEM_FINGERPRINT_LEN	32	/* SHA-256 */

/* settings.c */
extern int	idem_ttl_seconds;
extern int	idem_max_key_length;
extern int	idem_max_result_size;
extern bool idem_wait;
extern void idem_settings_init(void);
extern Interval *idem_ttl_interval(int seconds);

/* canonical.c */
extern bool canonical_output_needed(Oid type);
extern int	canonical_output_begin(void);
extern void canonical_output_end(int nestlevel);

/* The arguments bound to $1..$n of a statement, in their own types. */
typedef struct RequestArgs
{
	int			nargs;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;			/* SPI convention: ' ' not null, 'n' null */
	FmgrInfo  **outfuncs;		/* output function of each argument's type */
	char	  **typenames;		/* schema-qualified type names, for hashing */
	bool		canonical;		/* some argument's text form needs
								 * canonical_output_begin() */
} RequestArgs;

/* fingerprint.c */
extern bytea *idem_fingerprint(const char *sql, const RequestArgs *args);

/* keystore.c: columns of idempotency_keys, in the install script's order */
#define Anum_keys_scope			1
#define Anum_keys_key			2
#define Anum_keys_fingerprint	3
#define Anum_keys_result		4
#define Anum_keys_created_at	5
#define Anum_keys_expires_at	6

typedef struct KeyStore
{
	Oid			relid;			/* the idempotency_keys table */
	Oid			owner;			/* its owner, who runs the extension's own SQL */
} KeyStore;

extern void keystore_init(void);
extern void execute_init(void);
extern void keystore_open(KeyStore *ks, Oid fn_oid);
extern char *keystore_role_scope(void);
extern void raise_key_in_flight(const char *key, TransactionId holder);
extern bool keystore_claim_guard_key(KeyStore *ks, const char *scope,
									 const char *key, Interval *ttl);
extern void keystore_insert_result(KeyStore *ks, const char *scope,
								   const char *key, bytea *fingerprint,
								   Interval *ttl, Jsonb *result);
extern bool keystore_renew_result(KeyStore *ks, const char *scope,
								  const char *key, bytea *fingerprint,
								  Interval *ttl, Jsonb *result);
extern Jsonb *keystore_lookup(KeyStore *ks, const char *scope, const char *key);
extern bool keystore_forget(KeyStore *ks, const char *scope, const char *key);
extern int64 keystore_purge(KeyStore *ks, int64 max_rows);
extern int64 keystore_forget_scope(KeyStore *ks, const char *scope);
extern char *keystore_guard_of_table(KeyStore *ks, Oid relid);
extern Oid	keystore_table_of_guard(KeyStore *ks, const char *guard_id);
extern void keystore_register_guard(KeyStore *ks, const char *guard_id,
									Oid relid);
extern void keystore_unregister_guard(KeyStore *ks, Oid relid);

/* claim.c */
typedef enum ProbeState
{
	PROBE_ABSENT,
	PROBE_IN_FLIGHT,			/* another transaction holds the row */
	PROBE_FOUND					/* committed, or this transaction's */
} ProbeState;

typedef struct KeyProbe
{
	ProbeState	state;
	TransactionId holder;		/* PROBE_IN_FLIGHT: whom to wait for */
	bool		visible;		/* PROBE_FOUND: may be replayed here */
	bool		expired;
	bytea	   *fingerprint;
	Jsonb	   *result;
} KeyProbe;

typedef enum ClaimDecision
{
	CLAIM_REPLAY,				/* the key is live: replay or IK001 */
	CLAIM_INSERT,				/* absent: run, then insert its row */
	CLAIM_RENEW					/* expired: run, then replace its row */
} ClaimDecision;

extern void keystore_probe(KeyStore *ks, const char *scope, const char *key,
						   KeyProbe *probe);
extern ClaimDecision claim_key(KeyStore *ks, const char *scope,
							   const char *key, KeyProbe *probe);
extern void claim_release(const char *scope, const char *key);

/* plancache.c */
extern SPIPlanPtr statement_plan(const char *sql, const RequestArgs *args,
								 bool nested, bool *transient);

/* statement.c */
extern void statement_check(const char *sql);
extern Jsonb *statement_run(SPIPlanPtr plan, const RequestArgs *args,
							const char *key);
extern Jsonb *result_with_replayed(Jsonb *stored, bool replayed);

#endif							/* IDEMPOTENCY_H */
