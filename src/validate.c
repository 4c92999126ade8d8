/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Input checks and JSON access shared by every entry point: names,
 *	  payload sizes, durations, option objects and retry policies.  Each
 *	  check raises a DU-class error with a message, detail and hint, so a
 *	  bad call is rejected before it changes anything.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "durable.h"

/*
 * The SQLSTATE of input errors: DU001, or DU002 while commands are
 * validated (durable_apply_commands), so every malformed command reports DU002.
 * durable_enter resets it, so an error cannot leave it behind.
 */
int			durable_input_errcode = ERRCODE_DURABLE_INVALID_ARGUMENT;

/*
 * durable_check_name: a name (workflow type, activity, signal, worker, id) must be
 * non-NULL, non-empty and at most maxlen bytes.  Returns it as a C string.
 */
const char *
durable_check_name(text *t, const char *what, int maxlen)
{
	char	   *s;
	int			len;

	if (t == NULL)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("%s must not be NULL", what)));
	s = text_to_cstring(t);
	len = strlen(s);
	if (len == 0)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("%s must not be empty", what)));
	if (len > maxlen)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("%s is too long", what),
				 errdetail("It has %d bytes; the limit is %d.", len, maxlen)));
	durable_check_no_control_chars(s, len, what, false);
	return s;
}

/* memchr_control: does the string hold a control character? */
static bool
memchr_control(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
		if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] == 0x7f)
			return true;
	return false;
}

/*
 * durable_check_no_control_chars: names (namespaces, workflow types and ids,
 * queues, signals, steps, workers) hold no control characters: they show
 * up in psql output, logs and the UI, where a newline or an escape
 * sequence would forge or hide lines.  Free text (reasons, notes) may
 * hold tabs and newlines.
 */
void
durable_check_no_control_chars(const char *s, int len, const char *what, bool free_text)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (free_text && (c == '\t' || c == '\n' || c == '\r'))
			continue;
		if (c < 0x20 || c == 0x7f)
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("%s contains a control character", what),
					 errdetail("Byte %d is 0x%02x.", i + 1, c),
					 errhint(free_text ? "Only tabs and line breaks are allowed in it." :
							 "Names may not contain control characters.")));
	}
}

void
durable_check_queue_cstring(const char *s)
{
	const char *p;

	for (p = s; *p; p++)
		if (!(isalnum((unsigned char) *p) || *p == '_' || *p == '-' || *p == '.'))
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("invalid queue name \"%s\"", s),
					 errdetail("Queue names may hold only letters, digits, \"_\", \"-\" and \".\"."),
					 errhint("Workers LISTEN on the channel durable_<queue>, so the name must make a short channel name.")));
}

/*
 * durable_check_queue_name: a queue name also names the NOTIFY channel
 * durable_<queue>, so it is short and made of [A-Za-z0-9_.-].
 */
const char *
durable_check_queue_name(text *t)
{
	const char *s = durable_check_name(t, "queue name", DURABLE_MAX_QUEUE);

	durable_check_queue_cstring(s);
	return s;
}

/*
 * durable_check_payload: inputs, results, errors and signal payloads are limited
 * by durable.max_payload_size, like Temporal's blob size limit.
 */
void
durable_check_payload(Jsonb *jb, const char *what)
{
	int64		size;

	if (jb == NULL)
		return;
	size = VARSIZE_ANY(jb);
	if (size > (int64) durable_max_payload_kb * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_PAYLOAD_TOO_LARGE),
				 errmsg("%s is too large", what),
				 errdetail("It takes %lld bytes; durable.max_payload_size is %d kB.",
						   (long long) size, durable_max_payload_kb),
				 errhint("Store large data in a table and pass its key instead.")));
}

int
durable_check_positive_int(int v, const char *what, int max)
{
	if (v < 1 || v > max)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("%s must be between 1 and %d", what, max),
				 errdetail("The value given was %d.", v)));
	return v;
}

/*
 * durable_interval_to_ms: months count as 30 days, as in interval arithmetic.
 */
int64
durable_interval_to_ms(const Interval *iv)
{
	return iv->time / 1000 + (int64) iv->day * 86400000 +
		(int64) iv->month * 30 * 86400000;
}

/* durations longer than ten years are taken for mistakes */
#define MAX_DURATION_MS ((int64) 10 * 366 * 86400000)

Interval *
durable_check_interval(Interval *iv, const char *what, bool allow_zero)
{
	int64		ms;

	if (iv == NULL)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("%s must not be NULL", what)));
	ms = durable_interval_to_ms(iv);
	if (ms < 0 || (ms == 0 && !allow_zero) || ms > MAX_DURATION_MS)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("%s is out of range", what),
				 errdetail("It must be %s and at most 10 years.",
						   allow_zero ? "zero or positive" : "positive")));
	return iv;
}

const char *
durable_current_namespace(void)
{
	return durable_namespace ? durable_namespace : "default";
}

/*
 * JSON access.  durable_jb_get returns a key's value of an object, or NULL when the
 * key is absent.  The typed getters raise DU001 naming the key and the
 * context ("activity command", "retry policy" ...) when the type is wrong.
 */
JsonbValue *
durable_jb_get(Jsonb *obj, const char *key)
{
	if (obj == NULL || !JB_ROOT_IS_OBJECT(obj))
		return NULL;
	return getKeyJsonValueFromContainer(&obj->root, key, strlen(key), NULL);
}

Jsonb *
durable_jb_from_value(JsonbValue *v)
{
	return JsonbValueToJsonb(v);
}

static void
wrong_type(const char *ctx, const char *key, const char *expected)
{
	ereport(ERROR,
			(errcode(durable_input_errcode),
			 errmsg("invalid %s: \"%s\" must be %s", ctx, key, expected)));
}

char *
durable_jb_get_string(Jsonb *obj, const char *key, const char *ctx, int maxlen,
			  bool required)
{
	JsonbValue *v = durable_jb_get(obj, key);
	char	   *s;

	if (v == NULL || v->type == jbvNull)
	{
		if (required)
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("invalid %s: \"%s\" is missing", ctx, key)));
		return NULL;
	}
	if (v->type != jbvString)
		wrong_type(ctx, key, "a string");
	if (v->val.string.len == 0)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("invalid %s: \"%s\" must not be empty", ctx, key)));
	if (v->val.string.len > maxlen)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("invalid %s: \"%s\" is too long", ctx, key),
				 errdetail("It has %d bytes; the limit is %d.",
						   v->val.string.len, maxlen)));
	if (memchr_control(v->val.string.val, v->val.string.len))
		durable_check_no_control_chars(v->val.string.val, v->val.string.len,
							   psprintf("\"%s\" of the %s", key, ctx), false);
	s = pnstrdup(v->val.string.val, v->val.string.len);
	return s;
}

bool
durable_jb_get_double(Jsonb *obj, const char *key, const char *ctx,
			  double minval, double maxval, double *out)
{
	JsonbValue *v = durable_jb_get(obj, key);
	double		d;

	if (v == NULL || v->type == jbvNull)
		return false;
	if (v->type != jbvNumeric)
		wrong_type(ctx, key, "a number");
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
										   NumericGetDatum(v->val.numeric)));
	if (isnan(d) || d < minval || d > maxval)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("invalid %s: \"%s\" is out of range", ctx, key),
				 errdetail("It must be between %g and %g.", minval, maxval)));
	*out = d;
	return true;
}

bool
durable_jb_get_int(Jsonb *obj, const char *key, const char *ctx,
		   int64 minval, int64 maxval, int64 *out)
{
	double		d;

	if (!durable_jb_get_double(obj, key, ctx, (double) minval, (double) maxval, &d))
		return false;
	if (d != floor(d))
		wrong_type(ctx, key, "a whole number");
	*out = (int64) d;
	return true;
}

/*
 * parse_duration_ms: "250ms", "1.5s", "10 seconds", "5m", "2h", "3 days".
 * A bare number is seconds.  Returns -1 on a malformed string.
 */
static int64
parse_duration_ms(const char *s)
{
	char	   *end;
	double		n;
	double		unit = 1000.0;

	while (isspace((unsigned char) *s))
		s++;
	if (!isdigit((unsigned char) *s))
		return -1;
	n = strtod(s, &end);
	while (isspace((unsigned char) *end))
		end++;
	if (*end)
	{
		char		u[16];
		int			i = 0;

		while (isalpha((unsigned char) *end) && i < (int) sizeof(u) - 1)
			u[i++] = tolower((unsigned char) *end++);
		u[i] = '\0';
		while (isspace((unsigned char) *end))
			end++;
		if (*end)
			return -1;
		if (strcmp(u, "ms") == 0 || strcmp(u, "millisecond") == 0 ||
			strcmp(u, "milliseconds") == 0)
			unit = 1.0;
		else if (strcmp(u, "s") == 0 || strcmp(u, "sec") == 0 ||
				 strcmp(u, "second") == 0 || strcmp(u, "seconds") == 0)
			unit = 1000.0;
		else if (strcmp(u, "m") == 0 || strcmp(u, "min") == 0 ||
				 strcmp(u, "minute") == 0 || strcmp(u, "minutes") == 0)
			unit = 60000.0;
		else if (strcmp(u, "h") == 0 || strcmp(u, "hour") == 0 ||
				 strcmp(u, "hours") == 0)
			unit = 3600000.0;
		else if (strcmp(u, "d") == 0 || strcmp(u, "day") == 0 ||
				 strcmp(u, "days") == 0)
			unit = 86400000.0;
		else
			return -1;
	}
	if (n * unit > (double) MAX_DURATION_MS)
		return -2;
	return (int64) (n * unit);
}

/*
 * durable_jb_get_duration_ms: a duration option, as seconds (number) or a string
 * such as "30s" or "2 hours".  Zero and negative durations are rejected.
 */
bool
durable_jb_get_duration_ms(Jsonb *obj, const char *key, const char *ctx, int64 *out_ms)
{
	JsonbValue *v = durable_jb_get(obj, key);
	int64		ms;

	if (v == NULL || v->type == jbvNull)
		return false;
	if (v->type == jbvNumeric)
	{
		double		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
														   NumericGetDatum(v->val.numeric)));

		ms = (isnan(d) || d * 1000.0 > (double) MAX_DURATION_MS) ? -2 :
			(d < 0 ? -3 : (int64) (d * 1000.0));
	}
	else if (v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);

		if (strchr(s, '-'))
			ms = -3;
		else
			ms = parse_duration_ms(s);
	}
	else
	{
		wrong_type(ctx, key, "a duration (seconds as a number, or a string such as \"30s\")");
		return false;
	}
	if (ms == -1)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("invalid %s: \"%s\" is not a duration", ctx, key),
				 errhint("Use seconds as a number, or a string such as \"250ms\", \"30s\", \"5m\", \"2h\" or \"3d\".")));
	if (ms < -1 || ms == 0)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("invalid %s: \"%s\" is out of range", ctx, key),
				 errdetail("A duration must be positive and at most 10 years.")));
	*out_ms = ms;
	return true;
}

/*
 * durable_jb_check_keys: the value must be an object whose keys are all in the
 * NULL-terminated list; a misspelt option is an error, not ignored.
 */
void
durable_jb_check_keys(Jsonb *obj, const char *ctx, const char *const *allowed)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;

	if (obj == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(obj))
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("invalid %s: expected a JSON object", ctx)));
	it = JsonbIteratorInit(&obj->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
		{
			const char *const *a;
			bool		found = false;

			for (a = allowed; *a; a++)
				if (strlen(*a) == (size_t) v.val.string.len &&
					strncmp(*a, v.val.string.val, v.val.string.len) == 0)
					found = true;
			if (!found)
			{
				StringInfoData keys;

				initStringInfo(&keys);
				for (a = allowed; *a; a++)
					appendStringInfo(&keys, "%s%s", a == allowed ? "" : ", ", *a);
				ereport(ERROR,
						(errcode(durable_input_errcode),
						 errmsg("invalid %s: unknown key \"%.*s\"", ctx,
								Min(v.val.string.len, 64), v.val.string.val),
						 errdetail("Known keys: %s.", keys.data)));
			}
		}
	}
}

char *
durable_jb_text(Jsonb *jb)
{
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

Jsonb *
durable_jb_cstring(const char *json)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

/*
 * durable_jb_error_object: errors are stored as objects {"type", "message", ...};
 * a bare string becomes the message, any other value the details.
 */
Jsonb *
durable_jb_error_object(Jsonb *err)
{
	if (err == NULL)
		return durable_jb_cstring("{\"message\": \"unknown error\"}");
	if (JB_ROOT_IS_OBJECT(err))
		return err;
	if (JB_ROOT_IS_SCALAR(err))
	{
		JsonbValue	v;

		if (JsonbExtractScalar(&err->root, &v) && v.type == jbvString)
			return durable_jb_cstring(psprintf("{\"message\": %s}", durable_jb_text(err)));
	}
	return durable_jb_cstring(psprintf("{\"message\": \"error\", \"details\": %s}",
							   durable_jb_text(err)));
}

/*
 * durable_check_note_arg: the optional note argument of the pause and unpause
 * calls (schedules and queues): NULL, or 1 to 1000 bytes.
 */
const char *
durable_check_note_arg(FunctionCallInfo fcinfo, int argno)
{
	return durable_check_text_arg(fcinfo, argno, "note", 1000);
}

/*
 * durable_check_text_arg: an optional free-text argument (a note, a reason):
 * NULL, or 1 to maxlen bytes without control characters other than tabs
 * and line breaks.
 */
const char *
durable_check_text_arg(FunctionCallInfo fcinfo, int argno, const char *what, int maxlen)
{
	char	   *s;
	int			len;

	if (PG_ARGISNULL(argno))
		return NULL;
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	len = strlen(s);
	if (len == 0 || len > maxlen)
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("%s must be 1 to %d bytes", what, maxlen),
				 errdetail("It has %d bytes.", len)));
	durable_check_no_control_chars(s, len, what, true);
	return s;
}

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
			wrong_type(ctx, "non_retryable_error_types", "an array of strings");
		it = JsonbIteratorInit(&arr->root);
		while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
			if (r == WJB_ELEM && e.type != jbvString)
				wrong_type(ctx, "non_retryable_error_types", "an array of strings");
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

/*
 * durable_json_quote: a C string as a JSON string literal, for building small
 * JSON documents such as history details.
 */
char *
durable_json_quote(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, s);
	return buf.data;
}
