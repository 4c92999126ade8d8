/*-------------------------------------------------------------------------
 *
 * attributes.c
 *	  Search attributes declared per namespace (search_attribute_add,
 *	  search_attribute_remove): the only writer of
 *	  durable.search_attributes.  A declared attribute has a type; every
 *	  value a run is given for it (wf_start's options, a child's, an
 *	  upsert from workflow code) is checked against that type, so that
 *	  wf_list and wf_count can compare it as that type and the view
 *	  durable.search_attribute_values can show it in a typed column.
 *	  Attributes nobody declared stay untyped JSON, as before.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "durable.h"
#include "access.h"
#include "attributes.h"
#include "clock.h"
#include "json.h"
#include "spi.h"
#include "validate.h"

/* by SearchAttributeType, from SA_KEYWORD */
static const char *const type_names[] = {
	"keyword", "text", "int", "double", "bool", "datetime", "keyword_list"
};

/* the names wf_list gives its own columns: not for search attributes */
static const char *const builtin_names[] = {
	"WorkflowId", "WorkflowType", "RunId", "ExecutionStatus", "StartTime",
	"CloseTime", "TaskQueue"
};

static SearchAttributeType
parse_type(const char *name)
{
	int			i;

	/* Temporal's spelling of keyword_list (Keyword, Int ... match anyway) */
	if (pg_strcasecmp(name, "KeywordList") == 0)
		return SA_KEYWORD_LIST;
	for (i = 0; i < lengthof(type_names); i++)
		if (pg_strcasecmp(name, type_names[i]) == 0)
			return (SearchAttributeType) (i + SA_KEYWORD);
	return SA_UNDECLARED;
}

static const char *
type_name(SearchAttributeType type)
{
	Assert(type >= SA_KEYWORD && type <= SA_KEYWORD_LIST);
	return type_names[type - SA_KEYWORD];
}

/*
 * durable_search_attribute_type: the type name was declared with in ns, or
 * SA_UNDECLARED.  The caller is connected to SPI (durable_enter).
 */
SearchAttributeType
durable_search_attribute_type(const char *ns, const char *name)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(name);
	durable_plan(&plan,
				 "SELECT type FROM durable.search_attributes WHERE namespace = $1 AND name = $2",
				 2, types);
	durable_exec(plan, values, NULL, true, 1);
	if (SPI_processed != 1)
		return SA_UNDECLARED;
	return parse_type(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

/*
 * value_fits: does v (a value of the attributes object; JSON null always
 * fits: it unsets the attribute) fit type?  Else *why says what is wrong.
 */
static bool
value_fits(SearchAttributeType type, JsonbValue *v, const char **why)
{
	if (v->type == jbvNull)
		return true;
	switch (type)
	{
		case SA_KEYWORD:
		case SA_TEXT:
			*why = "a string";
			return v->type == jbvString;
		case SA_INT:
			*why = "a whole number from -9223372036854775808 to 9223372036854775807";
			if (v->type != jbvNumeric)
				return false;
			{
				Datum		num = NumericGetDatum(v->val.numeric);

				return !numeric_is_nan(v->val.numeric) &&
					DatumGetBool(DirectFunctionCall2(numeric_ge, num,
													 NumericGetDatum(int64_to_numeric(PG_INT64_MIN)))) &&
					DatumGetBool(DirectFunctionCall2(numeric_le, num,
													 NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))) &&
					DatumGetBool(DirectFunctionCall2(numeric_eq, num,
													 DirectFunctionCall2(numeric_trunc, num,
																		 Int32GetDatum(0))));
			}
		case SA_DOUBLE:
			*why = "a number";
			if (v->type != jbvNumeric)
				return false;
			{
				Datum		d;

				/* in the range of a double precision (1e400 is not) */
				return durable_try_input(float8in,
										 DatumGetCString(DirectFunctionCall1(numeric_out,
																			 NumericGetDatum(v->val.numeric))),
										 &d) && isfinite(DatumGetFloat8(d));
			}
		case SA_BOOL:
			*why = "true or false";
			return v->type == jbvBool;
		case SA_DATETIME:
			{
				Datum		d;

				*why = "a time as a string, such as \"2026-11-29T10:00:00Z\"";
				/*
				 * a date and time: digits, not words such as "now" or
				 * "tomorrow" that PostgreSQL reads relative to today
				 */
				return v->type == jbvString &&
					strpbrk(pnstrdup(v->val.string.val, v->val.string.len), "0123456789") != NULL &&
					durable_try_input(timestamptz_in,
									  pnstrdup(v->val.string.val, v->val.string.len), &d);
			}
		case SA_KEYWORD_LIST:
			*why = "an array of strings";
			if (v->type != jbvBinary)
				return false;
			{
				JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
				JsonbValue	e;
				JsonbIteratorToken r;
				bool		is_array = false;

				while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
				{
					if (r == WJB_BEGIN_ARRAY)
						is_array = true;
					else if (r == WJB_ELEM && e.type != jbvString)
						return false;
				}
				return is_array;
			}
		case SA_UNDECLARED:
			break;
	}
	return true;
}

/*
 * durable_check_search_attributes: every value attributes (an object of
 * name -> value) gives a declared attribute of ns must fit its type; an
 * error (the current input errcode: DU001, or DU002 inside commands)
 * otherwise.  Connected to SPI.
 */
void
durable_check_search_attributes(const char *ns, Jsonb *attributes)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		values[1];
	SPITupleTable *declared;
	uint64		n;
	uint64		i;

	if (attributes == NULL || !JB_ROOT_IS_OBJECT(attributes) || JB_ROOT_COUNT(attributes) == 0)
		return;
	values[0] = CStringGetTextDatum(ns);
	durable_plan(&plan,
				 "SELECT name, type FROM durable.search_attributes WHERE namespace = $1",
				 1, types);
	durable_exec(plan, values, NULL, true, 0);
	declared = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		char	   *name = SPI_getvalue(declared->vals[i], declared->tupdesc, 1);
		SearchAttributeType type = parse_type(SPI_getvalue(declared->vals[i], declared->tupdesc, 2));
		JsonbValue *v = durable_jb_get(attributes, name);
		const char *why = NULL;

		if (v != NULL && !value_fits(type, v, &why))
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("search attribute \"%s\" is declared as %s: its value must be %s",
							name, type_name(type), why),
					 errhint("durable.search_attribute_values lists the declared attributes of the runs.")));
	}
}

static const char *
attribute_name_arg(FunctionCallInfo fcinfo)
{
	const char *name = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
										  "search attribute name", 64);
	const char *c;
	int			i;

	for (c = name; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || *c == '_' ||
			  (c > name && *c >= '0' && *c <= '9')))
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("invalid search attribute name \"%s\"", name),
					 errhint("A name is a letter or _ and then letters, digits or _, as in a visibility query.")));
	for (i = 0; i < lengthof(builtin_names); i++)
		if (pg_strcasecmp(name, builtin_names[i]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("\"%s\" is a built-in attribute of every run", name),
					 errhint("Choose another name.")));
	return name;
}

/*
 * check_existing_values: the runs of ns that already have attribute name
 * must hold values that fit type (read in batches, with a cursor).
 */
static void
check_existing_values(const char *ns, const char *name, SearchAttributeType type)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	Portal		cursor;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(name);
	durable_plan(&plan,
				 "SELECT workflow_id, run_id, options->'search_attributes' FROM durable.runs "
				 " WHERE namespace = $1 AND options->'search_attributes' ? $2",
				 2, types);
	cursor = SPI_cursor_open(NULL, plan, values, NULL, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(cursor, true, 1000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			bool		isnull;
			Jsonb	   *attrs = DatumGetJsonbP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
			JsonbValue *v = durable_jb_get(attrs, name);
			const char *why = NULL;

			if (v != NULL && !value_fits(type, v, &why))
				ereport(ERROR,
						(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
						 errmsg("search attribute \"%s\" cannot be declared as %s", name, type_name(type)),
						 errdetail("Run %s of workflow \"%s\" has a value that is not %s.",
								   SPI_getvalue(tup, SPI_tuptable->tupdesc, 2),
								   SPI_getvalue(tup, SPI_tuptable->tupdesc, 1), why),
						 errhint("Declare another type, or another name.")));
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cursor);
}

/*
 * durable.search_attribute_add(name, type): declare a search attribute of
 * the session's namespace.  The runs that already have it must fit the
 * type.  Declaring it again with the same type changes nothing.
 */
PG_FUNCTION_INFO_V1(durable_search_attribute_add);
Datum
durable_search_attribute_add(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	const char *ns = durable_current_namespace();
	const char *name = attribute_name_arg(fcinfo);
	const char *given = durable_check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
										   "search attribute type", 64);
	SearchAttributeType type = parse_type(given);
	SearchAttributeType old;
	DurableCall call;
	Datum		values[4];

	if (type == SA_UNDECLARED)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("unknown search attribute type \"%s\"", given),
				 errhint("The types are keyword, text, int, double, bool, datetime and keyword_list.")));
	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	old = durable_search_attribute_type(ns, name);
	if (old == type)
	{
		durable_leave(&call);
		PG_RETURN_VOID();
	}
	if (old != SA_UNDECLARED)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_EXISTS),
				 errmsg("search attribute \"%s\" is already declared as %s", name, type_name(old)),
				 errhint("Remove it with durable.search_attribute_remove first.")));
	check_existing_values(ns, name, type);
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(type_name(type));
	values[3] = TimestampTzGetDatum(durable_now());
	durable_plan(&plan,
				 "INSERT INTO durable.search_attributes (namespace, name, type, created_at) "
				 "VALUES ($1, $2, $3, $4)",
				 4, types);
	durable_exec(plan, values, NULL, false, 0);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.search_attribute_remove(name): the attribute is no longer
 * declared; the values runs hold stay, as untyped JSON.
 */
PG_FUNCTION_INFO_V1(durable_search_attribute_remove);
Datum
durable_search_attribute_remove(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	const char *ns = durable_current_namespace();
	const char *name = attribute_name_arg(fcinfo);
	DurableCall call;
	Datum		values[2];

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(name);
	durable_plan(&plan,
				 "DELETE FROM durable.search_attributes WHERE namespace = $1 AND name = $2",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("search attribute \"%s\" is not declared in namespace \"%s\"", name, ns),
				 errhint("durable.search_attribute_list shows the declared ones.")));
	durable_leave(&call);
	PG_RETURN_VOID();
}
