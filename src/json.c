/*-------------------------------------------------------------------------
 *
 * json.c
 *	  Reading user-supplied JSON (commands, options, policies): typed
 *	  getters that raise a DU-class error naming the key and the context,
 *	  durations ("30s", "2 hours", seconds as a number), key whitelists,
 *	  and the small JSON documents the engine builds (errors, history
 *	  details).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "durable.h"
#include "json.h"
#include "validate.h"

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

void
durable_jb_wrong_type(const char *ctx, const char *key, const char *expected)
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
		durable_jb_wrong_type(ctx, key, "a string");
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
	if (durable_has_control_char(v->val.string.val, v->val.string.len))
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
		durable_jb_wrong_type(ctx, key, "a number");
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
		durable_jb_wrong_type(ctx, key, "a whole number");
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
		durable_jb_wrong_type(ctx, key, "a duration (seconds as a number, or a string such as \"30s\")");
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
 * durable_jb_error_arg: an error argument of a call that fails something
 * (task_fail, activity_fail): not NULL, within the payload limit, as an
 * error object.
 */
Jsonb *
durable_jb_error_arg(Jsonb *error)
{
	if (error == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("error must not be NULL"),
				 errhint("Pass {\"type\": \"...\", \"message\": \"...\"} or a string.")));
	durable_check_payload(error, "error");
	return durable_jb_error_object(error);
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
