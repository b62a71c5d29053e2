/*-------------------------------------------------------------------------
 *
 * keystore.h
 *	  Access to the extension's tables: idempotency_keys and
 *	  idempotency_guards.
 *
 * Owned by keystore.c: every type and function declared here.
 *
 * src/keystore.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_KEYSTORE_H
#define IDEMPOTENCY_KEYSTORE_H

#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* columns of idempotency_keys, in the install script's order */
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

/* What a probe of the primary key index found (keystore_probe). */
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

extern void keystore_init(void);
extern void keystore_open(KeyStore *ks, Oid fn_oid);
extern void keystore_probe(KeyStore *ks, const char *scope, const char *key,
						   KeyProbe *probe);
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

#endif							/* IDEMPOTENCY_KEYSTORE_H */
