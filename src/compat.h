/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where the PostgreSQL 14 to 17 APIs we use differ.
 *
 * src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_COMPAT_H
#define IDEMPOTENCY_COMPAT_H

#include "common/cryptohash.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "utils/acl.h"
#include "utils/guc.h"

/* MarkGUCPrefixReserved replaced EmitWarningsOnPlaceholders in 15. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/* pg_cryptohash_final gained a length argument, and pg_cryptohash_error, in 15. */
#if PG_VERSION_NUM >= 150000
#define idem_cryptohash_final(ctx, dest, len) pg_cryptohash_final((ctx), (dest), (len))
#define idem_cryptohash_error(ctx) pg_cryptohash_error(ctx)
#else
#define idem_cryptohash_final(ctx, dest, len) pg_cryptohash_final((ctx), (dest))
#define idem_cryptohash_error(ctx) "cryptohash failure"
#endif

/* pg_class_ownercheck became object_ownercheck in 16. */
#if PG_VERSION_NUM >= 160000
#define idem_table_ownercheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define idem_table_ownercheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

/* pg_namespace_aclcheck became object_aclcheck in 16. */
#if PG_VERSION_NUM >= 160000
#define idem_namespace_aclcheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define idem_namespace_aclcheck(nspid, roleid, mode) \
	pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

/* MERGE arrived in 15, MERGE ... RETURNING in 17. */
#if PG_VERSION_NUM >= 150000
#define IDEM_HAVE_MERGE 1
#endif
#if PG_VERSION_NUM >= 170000
#define IDEM_HAVE_MERGE_RETURNING 1
#endif

/* Extensions request shared memory from shmem_request_hook since 15. */
#if PG_VERSION_NUM >= 150000
#define IDEM_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/*
 * A database left invalid by an interrupted DROP DATABASE (minor releases
 * of 2023 on) cannot be connected to.
 */
#ifdef DATCONNLIMIT_INVALID_DB
#define idem_database_is_invalid(form) ((form)->datconnlimit == DATCONNLIMIT_INVALID_DB)
#else
#define idem_database_is_invalid(form) false
#endif

#endif							/* IDEMPOTENCY_COMPAT_H */
