/*-------------------------------------------------------------------------
 *
 * retry.h
 *	  Retry policies: parsing, backoff, retryable errors (retry.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_RETRY_H
#define DURABLE_RETRY_H

#include "durable.h"

/* retry policy (retry.c) */
typedef struct RetryPolicy
{
	int64		initial_ms;
	double		coefficient;
	int64		maximum_ms;
	int			maximum_attempts;	/* 0 = unlimited */
	Jsonb	   *non_retryable;	/* array of strings or NULL */
} RetryPolicy;

extern void durable_retry_policy_parse(Jsonb *policy, RetryPolicy *out, const char *ctx);
extern int64 durable_retry_backoff_ms(const RetryPolicy *p, int attempt);
extern bool durable_retry_error_is_retryable(const RetryPolicy *p, Jsonb *error);

#endif							/* DURABLE_RETRY_H */
