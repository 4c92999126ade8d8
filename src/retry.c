/*-------------------------------------------------------------------------
 *
 * retry.c
 *	  Retry policies, as Temporal defines them: parsing and checking a
 *	  policy, the backoff before the next attempt, and whether an error's
 *	  type may be retried.  Used for activities, workflow tasks and
 *	  workflow retries alike.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "durable.h"
#include "json.h"
#include "retry.h"
#include "validate.h"

/*
 * durable_retry_policy_parse: Temporal's retry policy and defaults: initial
 * interval 1 s, backoff coefficient 2.0, maximum interval 100 x initial,
 * unlimited attempts (0), no non-retryable error types.
 */
void
durable_retry_policy_parse(Jsonb *policy, RetryPolicy *out, const char *ctx)
{
	static const char *const keys[] = {"initial_interval", "backoff_coefficient",
		"maximum_interval", "maximum_attempts", "non_retryable_error_types", NULL};
	int64		n;
	JsonbValue *v;

	out->initial_ms = 1000;
	out->coefficient = 2.0;
	out->maximum_ms = -1;
	out->maximum_attempts = 0;
	out->non_retryable = NULL;

	if (policy == NULL)
	{
		out->maximum_ms = 100 * out->initial_ms;
		return;
	}
	durable_jb_check_keys(policy, ctx, keys);
	durable_jb_get_duration_ms(policy, "initial_interval", ctx, &out->initial_ms);
	durable_jb_get_double(policy, "backoff_coefficient", ctx, 1.0, 100.0, &out->coefficient);
	if (!durable_jb_get_duration_ms(policy, "maximum_interval", ctx, &out->maximum_ms))
		out->maximum_ms = Min(100 * out->initial_ms, MAX_DURATION_MS);
	else if (out->maximum_ms < out->initial_ms)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("invalid %s: \"maximum_interval\" is shorter than \"initial_interval\"", ctx)));
	if (durable_jb_get_int(policy, "maximum_attempts", ctx, 0, INT_MAX, &n))
		out->maximum_attempts = (int) n;
	v = durable_jb_get(policy, "non_retryable_error_types");
	if (v != NULL && v->type != jbvNull)
	{
		Jsonb	   *arr = (v->type == jbvBinary) ? JsonbValueToJsonb(v) : NULL;
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken r;

		if (arr == NULL || !JB_ROOT_IS_ARRAY(arr) || JB_ROOT_IS_SCALAR(arr))
			durable_jb_wrong_type(ctx, "non_retryable_error_types", "an array of strings");
		it = JsonbIteratorInit(&arr->root);
		while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
			if (r == WJB_ELEM && e.type != jbvString)
				durable_jb_wrong_type(ctx, "non_retryable_error_types", "an array of strings");
		out->non_retryable = arr;
	}
}

/*
 * durable_retry_backoff_ms: the wait before the attempt after failed attempt
 * number 'attempt' (1-based): initial x coefficient^(attempt-1), capped.
 */
int64
durable_retry_backoff_ms(const RetryPolicy *p, int attempt)
{
	double		ms = (double) p->initial_ms * pow(p->coefficient, Max(attempt - 1, 0));

	if (ms > (double) p->maximum_ms)
		return p->maximum_ms;
	return (int64) ms;
}

/*
 * durable_retry_error_is_retryable: false when the error's "type" is listed in the
 * policy's non_retryable_error_types.
 */
bool
durable_retry_error_is_retryable(const RetryPolicy *p, Jsonb *error)
{
	JsonbValue *type;
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken r;

	if (p->non_retryable == NULL || error == NULL)
		return true;
	type = durable_jb_get(error, "type");
	if (type == NULL || type->type != jbvString)
		return true;
	it = JsonbIteratorInit(&p->non_retryable->root);
	while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		if (r == WJB_ELEM && e.type == jbvString &&
			e.val.string.len == type->val.string.len &&
			memcmp(e.val.string.val, type->val.string.val, e.val.string.len) == 0)
			return false;
	return true;
}
