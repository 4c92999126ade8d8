/*-------------------------------------------------------------------------
 *
 * attributes.h
 *	  Search attributes declared per namespace, with a type.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_ATTRIBUTES_H
#define DURABLE_ATTRIBUTES_H

#include "utils/jsonb.h"

/* the types a search attribute can be declared with (Temporal's) */
typedef enum SearchAttributeType
{
	SA_UNDECLARED,				/* not declared: untyped JSON */
	SA_KEYWORD,
	SA_TEXT,
	SA_INT,
	SA_DOUBLE,
	SA_BOOL,
	SA_DATETIME,
	SA_KEYWORD_LIST
} SearchAttributeType;

extern SearchAttributeType durable_search_attribute_type(const char *ns, const char *name);
extern void durable_check_search_attributes(const char *ns, Jsonb *attributes);

#endif							/* DURABLE_ATTRIBUTES_H */
