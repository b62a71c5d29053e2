/*-------------------------------------------------------------------------
 *
 * canonical.h
 *	  Text forms of values that do not depend on the session's settings.
 *
 * Owned by canonical.c: every function declared here.
 *
 * src/canonical.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_CANONICAL_H
#define IDEMPOTENCY_CANONICAL_H

extern bool canonical_output_needed(Oid type);
extern bool canonical_output_needs_path(Oid type);
extern int	canonical_output_begin(void);
extern int	canonical_output_begin_settings(void);
extern void canonical_output_end(int nestlevel);

#endif							/* IDEMPOTENCY_CANONICAL_H */
