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

#include "scope.h"

/*
 * columns of idempotency_keys (1.1), in the install script's order: the
 * fixed-width ones first, so that no alignment padding falls between them
 */
#define Anum_keys_created_at	1
#define Anum_keys_expires_at	2
#define Anum_keys_owner			3
#define Anum_keys_scope			4
#define Anum_keys_key			5
#define Anum_keys_fingerprint	6
#define Anum_keys_command		7
#define Anum_keys_result		8
#define Anum_keys_tenant		9	/* colocated keys tables only (colocated.c) */
#define Natts_keys_pkey			4	/* (owner, scope, key, expires_at) */
#define Nkeys_key				3	/* its prefix (owner, scope, key) */

/*
 * The expiry rule: a key past its expires_at counts as absent.  "Now" is
 * the transaction's start, as now() in SQL.  Every SQL statement that tests
 * expiry uses KEY_EXPIRED_SQL (or its negation); C code uses key_expired().
 */
#define KEY_EXPIRED_SQL "expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
extern bool key_expired(TimestampTz expires_at);

typedef struct KeyStore
{
	Oid			relid;			/* the idempotency_keys table, or a shard of a
								 * colocated keys table */
	Oid			owner;			/* its owner, who runs the extension's own SQL */
	bool		beside_shard;	/* relid is a local shard of a colocated keys
								 * table (colocated.c): probed and inserted
								 * into directly, with tenant as its 9th
								 * column and last primary key column */
	Datum		tenant;			/* beside_shard: the distribution value */
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
	bytea	   *fingerprint;
	Jsonb	   *result;			/* the whole object, as stored_result() */
} KeyProbe;

extern void keystore_init(void);
extern void keystore_open(KeyStore *ks, Oid fn_oid);
extern void keystore_probe(KeyStore *ks, const KeyScope *scope,
						   const char *key, KeyProbe *probe);
extern void keystore_insert_result(KeyStore *ks, const KeyScope *scope,
								   const char *key, bytea *fingerprint,
								   Interval *ttl, const char *command,
								   Jsonb *result);
extern Jsonb *keystore_lookup(KeyStore *ks, const KeyScope *scope,
							  const char *key);
extern bool keystore_forget(KeyStore *ks, const KeyScope *scope,
							const char *key);
extern int64 keystore_purge(KeyStore *ks, int64 max_rows);
extern int64 keystore_forget_scope(KeyStore *ks, const KeyScope *scope);
extern bool keystore_scope_has_keys(KeyStore *ks, const KeyScope *scope);
extern char *keystore_guard_of_table(KeyStore *ks, Oid relid);
extern Oid	keystore_table_of_guard(KeyStore *ks, const char *guard_id);
extern void keystore_register_guard(KeyStore *ks, const char *guard_id,
									Oid relid);
extern void keystore_unregister_guard(KeyStore *ks, Oid relid);

#endif							/* IDEMPOTENCY_KEYSTORE_H */
