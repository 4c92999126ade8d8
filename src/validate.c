/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Input checks shared by every entry point: names, queue names, free
 *	  text, payload sizes, counts and intervals.  Each check raises a
 *	  DU-class error with a message, detail and hint, so a bad call is
 *	  rejected before it changes anything.  (JSON options are read and
 *	  checked in json.c, retry policies in retry.c.)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "durable.h"
#include "validate.h"

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

/* durable_has_control_char: does the string hold a control character? */
bool
durable_has_control_char(const char *s, int len)
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

/*
 * durable_ms_interval: milliseconds as an interval (all in its time part),
 * for the typed timeout columns.
 */
Interval *
durable_ms_interval(int64 ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = ms * 1000;
	return iv;
}

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
 * durable_array_elements: the elements of a one-dimensional array argument
 * (DU001 for more dimensions), as deconstruct_array gives them.
 */
void
durable_array_elements(ArrayType *arr, Oid elemtype, const char *what,
					   Datum **values, bool **nulls, int *n)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("%s must be a one-dimensional array", what)));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, values, nulls, n);
}

/*
 * durable_try_input: a type's input function (in) on text s; false when s
 * is not a value of the type (a data exception, class 22), for the caller
 * to restate with its own SQLSTATE.  Input functions only parse (no
 * locks, no state), so no subtransaction is needed; any other error (out
 * of memory, a cancel) goes on up.
 */
bool
durable_try_input(PGFunction in, const char *s, Datum *out)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		*out = DirectFunctionCall3(in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
								   Int32GetDatum(-1));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			ReThrowError(edata);
		FlushErrorState();
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}
