/*-------------------------------------------------------------------------
 *
 * json.h
 *	  Reading user JSON: typed getters, durations, key lists (json.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_JSON_H
#define DURABLE_JSON_H

#include "durable.h"

/* JSON access (json.c) */
extern void durable_jb_wrong_type(const char *ctx, const char *key,
								  const char *expected);
extern JsonbValue *durable_jb_get(Jsonb *obj, const char *key);
extern Jsonb *durable_jb_from_value(JsonbValue *v);
extern char *durable_jb_get_string(Jsonb *obj, const char *key, const char *ctx,
						   int maxlen, bool required);
extern bool durable_jb_get_int(Jsonb *obj, const char *key, const char *ctx,
					   int64 minval, int64 maxval, int64 *out);
extern bool durable_jb_get_double(Jsonb *obj, const char *key, const char *ctx,
						  double minval, double maxval, double *out);
extern bool durable_jb_get_duration_ms(Jsonb *obj, const char *key, const char *ctx,
							   int64 *out_ms);
extern void durable_jb_check_keys(Jsonb *obj, const char *ctx, const char *const *allowed);
extern Jsonb *durable_jb_error_object(Jsonb *err);
extern Jsonb *durable_jb_error_arg(Jsonb *error);
extern char *durable_jb_text(Jsonb *jb);
extern Jsonb *durable_jb_cstring(const char *json);
extern char *durable_json_quote(const char *s);

#endif							/* DURABLE_JSON_H */
