/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  Checks of SQL arguments (validate.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_VALIDATE_H
#define DURABLE_VALIDATE_H

#include "durable.h"
#include "utils/array.h"

/* validation helpers (validate.c) */
extern int	durable_input_errcode;
extern const char *durable_check_name(text *t, const char *what, int maxlen);
extern const char *durable_check_queue_name(text *t);
extern const char *durable_check_note_arg(FunctionCallInfo fcinfo, int argno);
extern const char *durable_check_text_arg(FunctionCallInfo fcinfo, int argno,
								  const char *what, int maxlen);
extern bool durable_has_control_char(const char *s, int len);
extern void durable_check_no_control_chars(const char *s, int len, const char *what,
								   bool free_text);
extern void durable_check_queue_cstring(const char *s);
extern void durable_check_payload(Jsonb *jb, const char *what);
extern int	durable_check_positive_int(int v, const char *what, int max);
extern Interval *durable_check_interval(Interval *iv, const char *what, bool allow_zero);
extern int64 durable_interval_to_ms(const Interval *iv);
extern Interval *durable_ms_interval(int64 ms);
extern void durable_array_elements(ArrayType *arr, Oid elemtype, const char *what,
								   Datum **values, bool **nulls, int *n);

extern bool durable_try_input(PGFunction in, const char *s, Datum *out);

#endif							/* DURABLE_VALIDATE_H */
