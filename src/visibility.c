/*-------------------------------------------------------------------------
 *
 * visibility.c
 *	  Listing and counting workflow runs with Temporal's visibility query
 *	  language: durable.wf_list(query, page_size, page_token) and
 *	  durable.wf_count(query).
 *
 *	  A query such as
 *
 *		WorkflowType = 'order' AND ExecutionStatus = 'Running'
 *		  AND CustomerId IN ('a', 'b') AND StartTime > '2026-11-01'
 *		  ORDER BY StartTime DESC
 *
 *	  is parsed here, by a recursive-descent parser, into a WHERE clause
 *	  over durable.runs in which every literal is a parameter ($n with its
 *	  type): the query's text never reaches the SQL.  Attribute names come
 *	  from a fixed table (the built-in attributes) or are custom search
 *	  attributes, looked up in the run's options by a parameter too.  A
 *	  malformed query fails with DU001 and the position (1-based byte) of
 *	  the first token that does not fit.
 *
 *	  Pages are keyset pages: each row carries the token of its place in
 *	  the order (sort key, run id), and the next page starts after the
 *	  token it is given, so a page costs the same however deep it is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"
#include "utils/timestamp.h"

#include "access.h"
#include "attributes.h"
#include "clock.h"
#include "json.h"
#include "validate.h"
#include "visibility.h"

#define MAX_QUERY_BYTES		10000
#define MAX_DEPTH			64
#define MAX_PARAMS			1000
#define MAX_IN_VALUES		1000
#define MAX_PAGE_SIZE		1000
#define LIST_COLUMNS		11

typedef enum AttrType
{
	ATTR_TEXT,
	ATTR_INT,
	ATTR_TIME,
	ATTR_STATUS,
	ATTR_DOUBLE,				/* a declared search attribute of type double */
	ATTR_BOOL,					/* ... of type bool */
	ATTR_KEYWORDS,				/* ... of type keyword_list: = and IN mean "holds" */
	ATTR_CUSTOM					/* a search attribute nobody declared: untyped jsonb */
} AttrType;

typedef struct Attr
{
	const char *name;			/* Temporal's name */
	const char *column;			/* its value, as SQL over durable.runs r */
	AttrType	type;
	const char *sort;			/* sort key (no NULLs), or NULL: cannot sort */
	AttrType	sort_type;
} Attr;

/*
 * StartTime sorts by run id: runs are numbered as they start, and the
 * primary key then serves the default order (newest first) without a sort
 * of every run, and without another index on the runs each start writes.
 * ORDER BY CloseTime lists closed runs only (an open run has no close
 * time).  No index serves it (closing a run must write no index entry,
 * see durable.runs): it sorts the closed runs the filter leaves, so
 * narrow the filter on large histories.
 */
static const Attr builtin_attrs[] = {
	{"WorkflowId", "r.workflow_id", ATTR_TEXT, "r.workflow_id", ATTR_TEXT},
	{"WorkflowType", "r.workflow_type", ATTR_TEXT, "r.workflow_type", ATTR_TEXT},
	{"RunId", "r.run_id", ATTR_INT, "r.run_id", ATTR_INT},
	{"ExecutionStatus", "r.status", ATTR_STATUS, "r.status", ATTR_TEXT},
	{"StartTime", "r.created_at", ATTR_TIME, "r.run_id", ATTR_INT},
	{"CloseTime", "r.closed_at", ATTR_TIME, "r.closed_at", ATTR_TIME},
	{"TaskQueue", "r.queue", ATTR_TEXT, "r.queue", ATTR_TEXT},
};

/* ExecutionStatus values: Temporal's names and durable's */
static const char *const status_names[][2] = {
	{"Running", "running"}, {"Completed", "completed"}, {"Failed", "failed"},
	{"Canceled", "cancelled"}, {"Cancelled", "cancelled"},
	{"Terminated", "terminated"}, {"ContinuedAsNew", "continued_as_new"},
	{"TimedOut", "timed_out"}, {"Continued_As_New", "continued_as_new"},
	{"Timed_Out", "timed_out"},
};

typedef enum TokKind
{
	TOK_END,
	TOK_IDENT,
	TOK_STRING,
	TOK_NUMBER,
	TOK_OP,						/* = != <> < <= > >= */
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_COMMA
} TokKind;

typedef struct Token
{
	TokKind		kind;
	int			pos;			/* 0-based byte offset */
	char	   *text;			/* identifier, operator, number, or the
								 * string's value */
} Token;

typedef struct Parser
{
	const char *src;
	int			len;
	int			at;				/* next byte to read */
	Token		tok;			/* the current token */
	int			depth;
	const char *ns;				/* declared search attributes: of this
								 * namespace (NULL: every one untyped) */
	StringInfoData where;
	int			nparams;
	bool		parsing;		/* the query's own values count against MAX_PARAMS */
	Oid			types[MAX_PARAMS + 8];	/* + the statement's own few */
	Datum		values[MAX_PARAMS + 8];
	/* ORDER BY */
	const Attr *sort_attr;
	bool		sort_desc;
	bool		has_order;
} Parser;

static void
syntax_error(Parser *p, int pos, const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
			 errmsg("invalid list query at position %d: %s", pos + 1, msg),
			 errhint("For example: WorkflowType = 'order' AND ExecutionStatus = 'Running' ORDER BY StartTime DESC")));
}

/* the next token into p->tok */
static void
next_token(Parser *p)
{
	const char *s = p->src;
	int			i = p->at;

	while (i < p->len && isspace((unsigned char) s[i]))
		i++;
	p->tok.pos = i;
	p->tok.text = NULL;
	if (i >= p->len)
	{
		p->tok.kind = TOK_END;
		p->at = i;
		return;
	}
	if (isalpha((unsigned char) s[i]) || s[i] == '_')
	{
		int			start = i;

		while (i < p->len && (isalnum((unsigned char) s[i]) || s[i] == '_'))
			i++;
		p->tok.kind = TOK_IDENT;
		p->tok.text = pnstrdup(s + start, i - start);
	}
	else if (s[i] == '`')
	{
		/* a quoted attribute name: `Customer Id` */
		int			start = ++i;

		while (i < p->len && s[i] != '`')
			i++;
		if (i >= p->len || i == start)
			syntax_error(p, p->tok.pos, i >= p->len ? "unterminated `name`" : "empty `name`");
		p->tok.kind = TOK_IDENT;
		p->tok.text = pnstrdup(s + start, i - start);
		i++;
	}
	else if (s[i] == '\'' || s[i] == '"')
	{
		/* a string; the quote doubled, or backslash-quoted, stands for itself */
		char		q = s[i++];
		StringInfoData buf;

		initStringInfo(&buf);
		for (;;)
		{
			if (i >= p->len)
				syntax_error(p, p->tok.pos, "unterminated string");
			if (s[i] == '\\' && i + 1 < p->len && (s[i + 1] == q || s[i + 1] == '\\'))
			{
				appendStringInfoChar(&buf, s[i + 1]);
				i += 2;
			}
			else if (s[i] == q && i + 1 < p->len && s[i + 1] == q)
			{
				appendStringInfoChar(&buf, q);
				i += 2;
			}
			else if (s[i] == q)
			{
				i++;
				break;
			}
			else
				appendStringInfoChar(&buf, s[i++]);
		}
		p->tok.kind = TOK_STRING;
		p->tok.text = buf.data;
	}
	else if (isdigit((unsigned char) s[i]) ||
			 (s[i] == '-' && i + 1 < p->len && isdigit((unsigned char) s[i + 1])))
	{
		/* a JSON number: -?digits(.digits)?([eE][+-]?digits)? */
		int			start = i;

		if (s[i] == '-')
			i++;
		while (i < p->len && isdigit((unsigned char) s[i]))
			i++;
		if (i < p->len && s[i] == '.')
		{
			i++;
			if (i >= p->len || !isdigit((unsigned char) s[i]))
				syntax_error(p, start, "malformed number");
			while (i < p->len && isdigit((unsigned char) s[i]))
				i++;
		}
		if (i < p->len && (s[i] == 'e' || s[i] == 'E'))
		{
			i++;
			if (i < p->len && (s[i] == '+' || s[i] == '-'))
				i++;
			if (i >= p->len || !isdigit((unsigned char) s[i]))
				syntax_error(p, start, "malformed number");
			while (i < p->len && isdigit((unsigned char) s[i]))
				i++;
		}
		if (i < p->len && (isalpha((unsigned char) s[i]) || s[i] == '_'))
			syntax_error(p, start, "malformed number");
		p->tok.kind = TOK_NUMBER;
		p->tok.text = pnstrdup(s + start, i - start);
	}
	else if (s[i] == '(' || s[i] == ')' || s[i] == ',')
	{
		p->tok.kind = s[i] == '(' ? TOK_LPAREN : s[i] == ')' ? TOK_RPAREN : TOK_COMMA;
		i++;
	}
	else if (s[i] == '=' || s[i] == '<' || s[i] == '>' || s[i] == '!')
	{
		int			start = i;

		i++;
		if (i < p->len && (s[i] == '=' || (s[start] == '<' && s[i] == '>')))
			i++;
		p->tok.kind = TOK_OP;
		p->tok.text = pnstrdup(s + start, i - start);
		if (strcmp(p->tok.text, "!") == 0 || strcmp(p->tok.text, "==") == 0)
			syntax_error(p, start, psprintf("unknown operator \"%s\"", p->tok.text));
		if (strcmp(p->tok.text, "<>") == 0)
			p->tok.text = pstrdup("!=");
	}
	else
		syntax_error(p, i, psprintf("unexpected character \"%c\"",
									isprint((unsigned char) s[i]) ? s[i] : '?'));
	p->at = i;
}

/* is the current token the keyword kw (case-insensitive)? */
static bool
is_keyword(Parser *p, const char *kw)
{
	return p->tok.kind == TOK_IDENT && pg_strcasecmp(p->tok.text, kw) == 0;
}

static void
expect_keyword(Parser *p, const char *kw)
{
	if (!is_keyword(p, kw))
		syntax_error(p, p->tok.pos, psprintf("expected %s", kw));
	next_token(p);
}

/* add a parameter; returns its number ($n) */
static int
add_param(Parser *p, Oid type, Datum value)
{
	if (p->nparams >= (p->parsing ? MAX_PARAMS : MAX_PARAMS + 8))
		syntax_error(p, p->tok.pos, "too many values");
	p->types[p->nparams] = type;
	p->values[p->nparams] = value;
	return ++p->nparams;
}

static const Attr *
builtin_attr(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(builtin_attrs); i++)
		if (strcmp(builtin_attrs[i].name, name) == 0)
			return &builtin_attrs[i];
	return NULL;
}

/*
 * value_datum: the current token as a value of attr's type (the token
 * is consumed).  *type is the parameter's type.
 */
static Datum
value_datum(Parser *p, const Attr *attr, Oid *type)
{
	Token		t = p->tok;
	Datum		d = (Datum) 0;

	if (t.kind != TOK_STRING && t.kind != TOK_NUMBER &&
		!((attr->type == ATTR_CUSTOM || attr->type == ATTR_BOOL) &&
		  (is_keyword(p, "true") || is_keyword(p, "false"))))
		syntax_error(p, t.pos, "expected a value");
	switch (attr->type)
	{
		case ATTR_DOUBLE:
			if (t.kind != TOK_NUMBER || !durable_try_input(float8in, t.text, &d))
				syntax_error(p, t.pos, psprintf("%s takes a number", attr->name));
			*type = FLOAT8OID;
			break;
		case ATTR_BOOL:
			if (t.kind != TOK_IDENT)
				syntax_error(p, t.pos, psprintf("%s takes true or false", attr->name));
			*type = BOOLOID;
			d = BoolGetDatum(is_keyword(p, "true"));
			break;
		case ATTR_KEYWORDS:
			if (t.kind != TOK_STRING)
				syntax_error(p, t.pos, psprintf("%s takes a string", attr->name));
			*type = TEXTOID;
			d = CStringGetTextDatum(t.text);
			break;
		case ATTR_TEXT:
			if (t.kind != TOK_STRING)
				syntax_error(p, t.pos, psprintf("%s takes a string", attr->name));
			*type = TEXTOID;
			d = CStringGetTextDatum(t.text);
			break;
		case ATTR_INT:
			{
				char	   *end;
				long long	v;

				errno = 0;
				v = strtoll(t.text, &end, 10);
				if (*t.text == '\0' || *end != '\0' || errno != 0)
					syntax_error(p, t.pos, psprintf("%s takes a whole number", attr->name));
				*type = INT8OID;
				d = Int64GetDatum((int64) v);
				break;
			}
		case ATTR_TIME:
			if (t.kind != TOK_STRING)
				syntax_error(p, t.pos, psprintf("%s takes a time as a string", attr->name));
			*type = TIMESTAMPTZOID;
			if (!durable_try_input(timestamptz_in, t.text, &d))
				syntax_error(p, t.pos, psprintf("\"%s\" is not a time", t.text));
			break;
		case ATTR_STATUS:
			{
				int			i;

				if (t.kind != TOK_STRING)
					syntax_error(p, t.pos, "ExecutionStatus takes a string");
				for (i = 0; i < lengthof(status_names); i++)
					if (pg_strcasecmp(status_names[i][0], t.text) == 0 ||
						pg_strcasecmp(status_names[i][1], t.text) == 0)
						break;
				if (i == lengthof(status_names))
					syntax_error(p, t.pos, psprintf("unknown ExecutionStatus \"%s\" (Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew, TimedOut)",
													t.text));
				*type = TEXTOID;
				d = CStringGetTextDatum(status_names[i][1]);
				break;
			}
		case ATTR_CUSTOM:
			{
				const char *json;

				if (t.kind == TOK_STRING)
					json = durable_json_quote(t.text);
				else if (t.kind == TOK_NUMBER)
					json = t.text;
				else
					json = is_keyword(p, "true") ? "true" : "false";
				/* a number the tokenizer let through can overflow numeric */
				*type = JSONBOID;
				if (!durable_try_input(jsonb_in, json, &d))
					syntax_error(p, t.pos, "number out of range");
				break;
			}
	}
	next_token(p);
	return d;
}

/*
 * attr_sql: the SQL for attr's value: a column, or the search attribute
 * ($*name_param its name) as its declared type (jsonb when undeclared,
 * or a keyword list).  A declared attribute's values were checked when
 * they were set (attributes.c), so the casts cannot fail.
 */
static char *
attr_sql(Parser *p, const Attr *attr, const char *name, int *name_param)
{
	const char *cast = NULL;
	int			k;

	if (attr->column != NULL)
		return pstrdup(attr->column);
	k = *name_param = add_param(p, TEXTOID, CStringGetTextDatum(name));
	switch (attr->type)
	{
		case ATTR_TEXT:
			return psprintf("(r.options->'search_attributes'->>$%d)", k);
		case ATTR_INT:
			cast = "numeric::bigint";	/* 3.0 is a whole number too */
			break;
		case ATTR_DOUBLE:
			cast = "float8";
			break;
		case ATTR_BOOL:
			cast = "boolean";
			break;
		case ATTR_TIME:
			cast = "timestamptz";
			break;
		default:
			return psprintf("(r.options->'search_attributes'->$%d)", k);
	}
	return psprintf("((r.options->'search_attributes'->>$%d)::%s)", k, cast);
}

/* the attribute type a declared search attribute is compared as */
static AttrType
declared_attr_type(SearchAttributeType t)
{
	switch (t)
	{
		case SA_KEYWORD:
		case SA_TEXT:
			return ATTR_TEXT;
		case SA_INT:
			return ATTR_INT;
		case SA_DOUBLE:
			return ATTR_DOUBLE;
		case SA_BOOL:
			return ATTR_BOOL;
		case SA_DATETIME:
			return ATTR_TIME;
		case SA_KEYWORD_LIST:
			return ATTR_KEYWORDS;
		case SA_UNDECLARED:
			break;
	}
	return ATTR_CUSTOM;
}

/*
 * append_holds: "the runs whose attribute $name_param holds value $n",
 * as the containment the search-attribute index (runs_search_attributes,
 * GIN) answers; the index covers only the runs that have attributes.
 */
static void
append_holds(Parser *p, const Attr *attr, int name_param, int n)
{
	appendStringInfo(&p->where,
					 "r.options ? 'search_attributes' AND r.options->'search_attributes' @> "
					 "jsonb_build_object($%d, %s$%d%s)",
					 name_param, attr->type == ATTR_KEYWORDS ? "jsonb_build_array(" : "",
					 n, attr->type == ATTR_KEYWORDS ? ")" : "");
}

static Oid
array_type_of(Oid type)
{
	switch (type)
	{
		case TEXTOID:
			return TEXTARRAYOID;
		case INT8OID:
			return INT8ARRAYOID;
		case TIMESTAMPTZOID:
			return 1185;		/* timestamptz[] */
		case FLOAT8OID:
			return FLOAT8ARRAYOID;
		case BOOLOID:
			return BOOLARRAYOID;
		default:
			return 3807;		/* jsonb[] */
	}
}

static void parse_or(Parser *p);

/*
 * predicate: attr op value | attr [NOT] IN (values) | attr [NOT] BETWEEN
 * value AND value | attr STARTS_WITH string | attr IS [NOT] NULL
 */
static void
parse_predicate(Parser *p)
{
	Attr		custom;
	const Attr *attr;
	char	   *name;
	char	   *col;
	Oid			type;
	bool		negate = false;
	int			name_param = 0;

	if (p->tok.kind != TOK_IDENT)
		syntax_error(p, p->tok.pos, "expected an attribute name");
	name = p->tok.text;
	attr = builtin_attr(name);
	if (attr == NULL)
	{
		if (strlen(name) > DURABLE_MAX_NAME)
			syntax_error(p, p->tok.pos, "attribute name too long");
		custom.name = name;
		custom.column = NULL;
		custom.type = declared_attr_type(p->ns == NULL ? SA_UNDECLARED :
										 durable_search_attribute_type(p->ns, name));
		custom.sort = NULL;
		custom.sort_type = ATTR_CUSTOM;
		attr = &custom;
	}
	next_token(p);
	col = attr_sql(p, attr, name, &name_param);

	if (p->tok.kind == TOK_OP)
	{
		const char *op = p->tok.text;
		bool		eq = strcmp(op, "=") == 0;
		int			n;

		if (attr->type == ATTR_KEYWORDS && !eq && strcmp(op, "!=") != 0 && strcmp(op, "<>") != 0)
			syntax_error(p, p->tok.pos, psprintf("%s is a keyword list: it takes =, != and IN", name));
		next_token(p);
		n = add_param(p, InvalidOid, (Datum) 0);
		p->values[n - 1] = value_datum(p, attr, &p->types[n - 1]);
		if (attr->type == ATTR_KEYWORDS)
			appendStringInfo(&p->where, "%s(%s ? $%d)", eq ? "" : "NOT ", col, n);
		else if (eq && attr->column == NULL && attr->type != ATTR_CUSTOM && attr->type != ATTR_TIME)
		{
			/* a declared attribute's equality: the index finds the runs */
			appendStringInfo(&p->where, "(%s = $%d AND ", col, n);
			append_holds(p, attr, name_param, n);
			appendStringInfoChar(&p->where, ')');
		}
		else
			appendStringInfo(&p->where, "%s %s $%d", col, op, n);
		return;
	}
	if (is_keyword(p, "IS"))
	{
		next_token(p);
		if (is_keyword(p, "NOT"))
		{
			next_token(p);
			negate = true;
		}
		expect_keyword(p, "NULL");
		appendStringInfo(&p->where, "%s IS %sNULL", col, negate ? "NOT " : "");
		return;
	}
	if (is_keyword(p, "STARTS_WITH"))
	{
		int			n;

		next_token(p);
		if (p->tok.kind != TOK_STRING)
			syntax_error(p, p->tok.pos, "STARTS_WITH takes a string");
		if (attr->type != ATTR_TEXT && attr->type != ATTR_CUSTOM)
			syntax_error(p, p->tok.pos, psprintf("%s cannot take STARTS_WITH", attr->name));
		n = add_param(p, TEXTOID, CStringGetTextDatum(p->tok.text));
		next_token(p);
		if (attr->type == ATTR_CUSTOM)
			appendStringInfo(&p->where, "starts_with(%s #>> '{}', $%d)", col, n);
		else if (lc_collate_is_c(DEFAULT_COLLATION_OID))
		{
			/*
			 * In byte order a string sorts after its prefix, so the lower
			 * bound lets an index on the column start at the prefix (other
			 * collations may reorder characters: no bound there).
			 */
			appendStringInfo(&p->where, "(%s >= $%d AND starts_with(%s, $%d))", col, n, col, n);
		}
		else
			appendStringInfo(&p->where, "starts_with(%s, $%d)", col, n);
		return;
	}
	if (is_keyword(p, "NOT"))
	{
		next_token(p);
		negate = true;
		if (!is_keyword(p, "IN") && !is_keyword(p, "BETWEEN"))
			syntax_error(p, p->tok.pos, "expected IN or BETWEEN after NOT");
	}
	if (is_keyword(p, "IN"))
	{
		Datum	   *vals = palloc(sizeof(Datum) * MAX_IN_VALUES);
		int			n = 0;

		next_token(p);
		if (p->tok.kind != TOK_LPAREN)
			syntax_error(p, p->tok.pos, "expected ( after IN");
		next_token(p);
		type = InvalidOid;
		for (;;)
		{
			if (n >= MAX_IN_VALUES)
				syntax_error(p, p->tok.pos, "more than 1000 values in IN");
			vals[n++] = value_datum(p, attr, &type);
			if (p->tok.kind == TOK_RPAREN)
				break;
			if (p->tok.kind != TOK_COMMA)
				syntax_error(p, p->tok.pos, "expected , or ) in IN");
			next_token(p);
		}
		next_token(p);
		{
			int16		typlen;
			bool		byval;
			char		align;
			int			k;

			get_typlenbyvalalign(type, &typlen, &byval, &align);
			k = add_param(p, array_type_of(type),
						  PointerGetDatum(construct_array(vals, n, type, typlen, byval, align)));
			if (attr->type == ATTR_KEYWORDS)
				appendStringInfo(&p->where, "%s(%s ?| $%d)", negate ? "NOT " : "", col, k);
			else
				appendStringInfo(&p->where, "%s(%s = ANY ($%d))", negate ? "NOT " : "", col, k);
		}
		return;
	}
	if (is_keyword(p, "BETWEEN"))
	{
		int			a,
					b;

		if (attr->type == ATTR_KEYWORDS || attr->type == ATTR_BOOL)
			syntax_error(p, p->tok.pos, psprintf("%s cannot take BETWEEN", name));
		next_token(p);
		a = add_param(p, InvalidOid, (Datum) 0);
		p->values[a - 1] = value_datum(p, attr, &p->types[a - 1]);
		expect_keyword(p, "AND");
		b = add_param(p, InvalidOid, (Datum) 0);
		p->values[b - 1] = value_datum(p, attr, &p->types[b - 1]);
		appendStringInfo(&p->where, "%s%s BETWEEN $%d AND $%d", col, negate ? " NOT" : "", a, b);
		return;
	}
	syntax_error(p, p->tok.pos, "expected an operator (=, !=, <, <=, >, >=, IN, BETWEEN, STARTS_WITH, IS)");
}

/* primary: ( expr ) | NOT primary | predicate */
static void
parse_primary(Parser *p)
{
	check_stack_depth();
	if (++p->depth > MAX_DEPTH)
		syntax_error(p, p->tok.pos, "nested too deeply");
	if (p->tok.kind == TOK_LPAREN)
	{
		next_token(p);
		appendStringInfoChar(&p->where, '(');
		parse_or(p);
		if (p->tok.kind != TOK_RPAREN)
			syntax_error(p, p->tok.pos, "expected )");
		next_token(p);
		appendStringInfoChar(&p->where, ')');
	}
	else if (is_keyword(p, "NOT"))
	{
		next_token(p);
		appendStringInfoString(&p->where, "NOT (");
		parse_primary(p);
		appendStringInfoChar(&p->where, ')');
	}
	else
		parse_predicate(p);
	p->depth--;
}

static void
parse_and(Parser *p)
{
	parse_primary(p);
	while (is_keyword(p, "AND"))
	{
		next_token(p);
		appendStringInfoString(&p->where, " AND ");
		parse_primary(p);
	}
}

static void
parse_or(Parser *p)
{
	parse_and(p);
	while (is_keyword(p, "OR"))
	{
		next_token(p);
		appendStringInfoString(&p->where, " OR ");
		parse_and(p);
	}
}

/*
 * the whole query: [expr] [ORDER BY attr [ASC|DESC]]; ns: whose declared
 * search attributes are typed (connected to SPI, durable_enter)
 */
static void
parse_query(Parser *p, const char *ns, const char *query)
{
	p->ns = ns;
	p->src = query;
	p->len = strlen(query);
	p->at = 0;
	p->depth = 0;
	p->nparams = 0;
	p->parsing = true;
	initStringInfo(&p->where);
	p->sort_attr = builtin_attr("StartTime");
	p->sort_desc = true;		/* Temporal's default: newest first */
	p->has_order = false;
	if (p->len > MAX_QUERY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("list query is too long"),
				 errdetail("It has %d bytes; at most %d are allowed.", p->len, MAX_QUERY_BYTES)));
	durable_check_no_control_chars(query, p->len, "list query", true);
	next_token(p);
	if (p->tok.kind != TOK_END && !is_keyword(p, "ORDER"))
		parse_or(p);
	if (is_keyword(p, "ORDER"))
	{
		next_token(p);
		expect_keyword(p, "BY");
		if (p->tok.kind != TOK_IDENT)
			syntax_error(p, p->tok.pos, "expected an attribute after ORDER BY");
		p->sort_attr = builtin_attr(p->tok.text);
		if (p->sort_attr == NULL || p->sort_attr->sort == NULL)
			syntax_error(p, p->tok.pos, "ORDER BY takes StartTime, CloseTime, WorkflowId, WorkflowType, RunId, TaskQueue or ExecutionStatus");
		next_token(p);
		p->sort_desc = false;
		if (is_keyword(p, "DESC") || is_keyword(p, "ASC"))
		{
			p->sort_desc = is_keyword(p, "DESC");
			next_token(p);
		}
		p->has_order = true;
	}
	if (p->tok.kind != TOK_END)
		syntax_error(p, p->tok.pos, "unexpected text after the query");
	p->parsing = false;
}

/* the current namespace's runs, as the query filters them */
static void
append_from_where(Parser *p, StringInfo sql, int ns_param)
{
	appendStringInfo(sql, " FROM durable.runs r WHERE r.namespace = $%d", ns_param);
	if (p->where.len > 0)
		appendStringInfo(sql, " AND (%s)", p->where.data);
}

/*
 * The page token of a row: "v1|<sort attribute>|<a or d>|<run_id>|<key>",
 * the key a time as microseconds since 2000,
 * otherwise as text.
 */
static const char *
token_sql(const Attr *sort)
{
	if (sort->sort_type == ATTR_TIME)
		return psprintf("((extract(epoch FROM %s) * 1000000)::bigint - 946684800000000)::text",
						sort->sort);
	return psprintf("(%s)::text", sort->sort);
}

static void
invalid_page_token(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
			 errmsg("invalid page token"),
			 errhint("Pass the next_page_token of a row wf_list returned for the same query, or NULL for the first page.")));
}

/* a whole number of a page token */
static int64
token_int(const char *s)
{
	char	   *end;
	int64		v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0)
		invalid_page_token();
	return v;
}

/* parse a page token of this query's order into the keyset's two values */
static void
parse_page_token(Parser *p, const char *token, Datum *key, Oid *key_type, int64 *run_id)
{
	char	   *parts[5];
	char	   *s = pstrdup(token);
	int			i;

	for (i = 0; i < 4; i++)
	{
		parts[i] = s;
		s = strchr(s, '|');
		if (s == NULL)
			break;
		*s++ = '\0';
	}
	parts[4] = s;
	if (i < 4 || strcmp(parts[0], "v1") != 0 ||
		strcmp(parts[1], p->sort_attr->name) != 0 ||
		strcmp(parts[2], p->sort_desc ? "d" : "a") != 0)
		invalid_page_token();
	*run_id = token_int(parts[3]);
	switch (p->sort_attr->sort_type)
	{
		case ATTR_TIME:
			*key_type = TIMESTAMPTZOID;
			*key = TimestampTzGetDatum(token_int(parts[4]));
			break;
		case ATTR_INT:
			/* RunId and StartTime: the key is the run id itself */
			*key_type = INT8OID;
			*key = Int64GetDatum(*run_id);
			break;
		default:
			*key_type = TEXTOID;
			*key = CStringGetTextDatum(parts[4]);
	}
}

/*
 * durable_list_check: DU001 unless query is a valid query of namespace
 * ns without ORDER BY (a batch operation's: batches go in run id order).
 * Connected to SPI.
 */
void
durable_list_check(const char *ns, const char *query)
{
	Parser		p;

	parse_query(&p, ns, query);
	if (p.has_order)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("a batch query takes no ORDER BY"),
				 errhint("A batch goes through the runs in the order they started.")));
}

/*
 * durable_list_running: the ids of the running runs of namespace ns that
 * match query, in (after_run, max_run], in run id order, at most limit.
 * Fills *run_ids (allocated here) and returns how many.  The caller is
 * connected to SPI (durable_enter).
 */
int
durable_list_running(const char *ns, const char *query, int64 after_run, int64 max_run,
					 int limit, int64 **run_ids)
{
	Parser		p;
	StringInfoData sql;
	int			n;
	int			i;

	parse_query(&p, ns, query);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT r.run_id");
	append_from_where(&p, &sql, add_param(&p, TEXTOID, CStringGetTextDatum(ns)));
	appendStringInfo(&sql, " AND r.status = 'running' AND r.run_id > $%d AND r.run_id <= $%d"
					 " ORDER BY r.run_id LIMIT $%d",
					 add_param(&p, INT8OID, Int64GetDatum(after_run)),
					 add_param(&p, INT8OID, Int64GetDatum(max_run)),
					 add_param(&p, INT4OID, Int32GetDatum(limit)));
	/* not read-only: a snapshot of now, after the runs this round closed */
	if (SPI_execute_with_args(sql.data, p.nparams, p.types, p.values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "durable: the batch query failed");
	n = (int) SPI_processed;
	*run_ids = palloc(sizeof(int64) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		(*run_ids)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1, &isnull));
	}
	return n;
}

static const char *
query_arg(FunctionCallInfo fcinfo)
{
	return PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0));
}

/*
 * durable.wf_list(query, page_size, page_token): the current namespace's
 * runs that match, in the query's order, page_size at a time; each row's
 * page_token continues after it.
 */
PG_FUNCTION_INFO_V1(durable_wf_list);
Datum
durable_wf_list(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *ns = durable_current_namespace();
	const char *query = query_arg(fcinfo);
	Parser		p;
	StringInfoData sql;
	int			page_size;
	int			ns_param;
	int			limit_param;
	const char *dir;
	DurableCall call;
	uint64		i;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("page_size must not be NULL")));
	page_size = durable_check_positive_int(PG_GETARG_INT32(1), "page_size", MAX_PAGE_SIZE);
	InitMaterializedSRF(fcinfo, 0);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	parse_query(&p, ns, query);
	dir = p.sort_desc ? "DESC" : "ASC";

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT r.namespace, r.workflow_id, r.run_id, r.workflow_type, r.queue, "
					 "       r.status, r.created_at, r.closed_at, "
					 "       r.options->'search_attributes', r.options->'memo', "
					 "       'v1|%s|%s|' || r.run_id || '|' || %s",
					 p.sort_attr->name, p.sort_desc ? "d" : "a", token_sql(p.sort_attr));
	ns_param = add_param(&p, TEXTOID, CStringGetTextDatum(ns));
	append_from_where(&p, &sql, ns_param);
	if (strcmp(p.sort_attr->name, "CloseTime") == 0)
		appendStringInfoString(&sql, " AND r.closed_at IS NOT NULL");
	if (!PG_ARGISNULL(2))
	{
		Datum		key;
		Oid			key_type;
		int64		after_run;
		int			k,
					r;

		parse_page_token(&p, text_to_cstring(PG_GETARG_TEXT_PP(2)), &key, &key_type, &after_run);
		k = add_param(&p, key_type, key);
		r = add_param(&p, INT8OID, Int64GetDatum(after_run));
		appendStringInfo(&sql, " AND (%s, r.run_id) %s ($%d, $%d)",
						 p.sort_attr->sort, p.sort_desc ? "<" : ">", k, r);
	}
	limit_param = add_param(&p, INT4OID, Int32GetDatum(page_size));
	appendStringInfo(&sql, " ORDER BY %s %s, r.run_id %s LIMIT $%d",
					 p.sort_attr->sort, dir, dir, limit_param);

	if (SPI_execute_with_args(sql.data, p.nparams, p.types, p.values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "durable: the list query failed");
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		out[LIST_COLUMNS];
		bool		nulls[LIST_COLUMNS];
		int			c;

		for (c = 0; c < LIST_COLUMNS; c++)
			out[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	durable_leave(&call);
	return (Datum) 0;
}

/*
 * durable.wf_count(query): how many of the current namespace's runs match.
 */
PG_FUNCTION_INFO_V1(durable_wf_count);
Datum
durable_wf_count(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *query = query_arg(fcinfo);
	Parser		p;
	StringInfoData sql;
	DurableCall call;
	bool		isnull;
	int64		n;

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	parse_query(&p, ns, query);
	if (p.has_order)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("a count query takes no ORDER BY")));
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT count(*)");
	append_from_where(&p, &sql, add_param(&p, TEXTOID, CStringGetTextDatum(ns)));
	if (SPI_execute_with_args(sql.data, p.nparams, p.types, p.values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "durable: the count query failed");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	durable_leave(&call);
	PG_RETURN_INT64(n);
}
