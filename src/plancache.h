/*-------------------------------------------------------------------------
 *
 * plancache.h
 *	  Prepared plans of users' statements, kept per backend.
 *
 * Owned by plancache.c: every function declared here.
 *
 * src/plancache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_PLANCACHE_H
#define IDEMPOTENCY_PLANCACHE_H

#include "executor/spi.h"

#include "statement.h"

extern SPIPlanPtr statement_plan(const char *sql, const RequestArgs *args,
								 bool nested, bool *transient);

#endif							/* IDEMPOTENCY_PLANCACHE_H */
