/*-------------------------------------------------------------------------
 *
 * cron.c
 *	  Cron parsing and evaluation for schedules.  A spec is either a cron
 *	  expression of 5 fields (minute hour day-of-month month day-of-week)
 *	  or 6 (seconds first), with *, lists, ranges, steps, month and day
 *	  names and the @hourly/@daily/@weekly/@monthly/@yearly macros; or
 *	  "every <duration>" (also "@every <duration>").  Cron times are read
 *	  in the schedule's time zone (IANA name), so "0 3 * * *" in
 *	  Europe/Paris fires at 03:00 Paris time across DST changes.  As in
 *	  Vixie cron, when both day fields are restricted a day matching
 *	  either fires.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "cron.h"

static void
bad_spec(const char *spec, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
			 errmsg("invalid schedule spec \"%s\"", spec),
			 errdetail("%s", detail),
			 errhint("Use a cron expression such as \"*/5 * * * *\" (5 fields, or 6 with seconds first), a macro such as \"@daily\", or \"every 10m\".")));
}

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
"jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

/*
 * parse_value: a number, or a month/day name for those fields.
 */
static int
parse_value(const char *spec, const char **p, const char *const *names, int name_base)
{
	int			v = 0;

	if (isdigit((unsigned char) **p))
	{
		int			digits = 0;

		while (isdigit((unsigned char) **p))
		{
			if (++digits > 4)
				bad_spec(spec, "A number in a field is too long.");
			v = v * 10 + (**p - '0');
			(*p)++;
		}
		return v;
	}
	if (names)
	{
		int			i;

		for (i = 0; names[i]; i++)
			if (pg_strncasecmp(*p, names[i], 3) == 0)
			{
				*p += 3;
				return i + name_base;
			}
	}
	bad_spec(spec, "A field holds something that is not a number, name, \"*\", range or step.");
	return 0;
}

/*
 * parse_field: one field into a bitmask of allowed values in [lo, hi].
 */
static uint64
parse_field(const char *spec, const char *field, int lo, int hi,
			const char *const *names, int name_base, bool *star)
{
	const char *p = field;
	uint64		mask = 0;

	*star = (strcmp(field, "*") == 0 || strcmp(field, "?") == 0);
	for (;;)
	{
		int			from,
					to,
					step = 1,
					v;

		if (*p == '*' || *p == '?')
		{
			from = lo;
			to = hi;
			p++;
		}
		else
		{
			from = parse_value(spec, &p, names, name_base);
			to = from;
			if (*p == '-')
			{
				p++;
				to = parse_value(spec, &p, names, name_base);
			}
		}
		if (*p == '/')
		{
			p++;
			step = parse_value(spec, &p, NULL, 0);
			if (step < 1)
				bad_spec(spec, "A step must be at least 1.");
			if (from == to && field[0] != '*')
				to = hi;		/* "5/15" means from 5 to the end */
		}
		if (from < lo || to > hi || from > to)
			bad_spec(spec, psprintf("A value in \"%s\" is outside %d-%d.", field, lo, hi));
		for (v = from; v <= to; v += step)
			mask |= UINT64CONST(1) << v;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p != '\0')
			bad_spec(spec, psprintf("Unexpected \"%c\" in field \"%s\".", *p, field));
		break;
	}
	return mask;
}

/*
 * unit_is: the unit word u (trailing spaces allowed) is one of the given
 * spellings, or the long one with a plural s.
 */
static bool
unit_is(const char *u, const char *a, const char *b, const char *word)
{
	int			len = strlen(u);
	char	   *w;

	while (len > 0 && isspace((unsigned char) u[len - 1]))
		len--;
	w = pnstrdup(u, len);
	return pg_strcasecmp(w, a) == 0 || (b && pg_strcasecmp(w, b) == 0) ||
		(word && (pg_strcasecmp(w, word) == 0 ||
				  (len == (int) strlen(word) + 1 && pg_strncasecmp(w, word, len - 1) == 0 &&
				   (w[len - 1] == 's' || w[len - 1] == 'S'))));
}

static int64
parse_every(const char *spec, const char *s)
{
	char	   *end;
	double		n;
	double		unit;

	while (isspace((unsigned char) *s))
		s++;
	n = strtod(s, &end);
	if (end == s || n <= 0)
		bad_spec(spec, "\"every\" needs a positive duration such as 30s, 10m, 2h or 1d.");
	while (isspace((unsigned char) *end))
		end++;
	if (unit_is(end, "s", "sec", "second"))
		unit = 1000;
	else if (unit_is(end, "m", "min", "minute"))
		unit = 60000;
	else if (unit_is(end, "h", "hr", "hour"))
		unit = 3600000;
	else if (unit_is(end, "d", "day", NULL))
		unit = 86400000;
	else if (unit_is(end, "ms", "msec", "millisecond"))
	{
		bad_spec(spec, "Sub-second intervals are not supported: the shortest is \"every 1s\".");
		return 0;
	}
	else
	{
		bad_spec(spec, "\"every\" needs a unit: s, m, h or d (or second, minute, hour, day).");
		return 0;
	}
	if (n * unit < 1000 || n * unit > 366.0 * 86400000)
		bad_spec(spec, "An interval must be between 1 second and 366 days.");
	return (int64) (n * unit);
}

/*
 * durable_cron_parse: parse a spec; timezone NULL means UTC.
 */
void
durable_cron_parse(const char *spec, const char *timezone, CronSpec *out)
{
	char	   *copy;
	char	   *fields[7];
	int			n = 0;
	char	   *tok;
	char	   *save;
	bool		star;
	int			off = 0;

	memset(out, 0, sizeof(*out));
	out->tz = pg_tzset(timezone ? timezone : "UTC");
	if (out->tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("unknown time zone \"%s\"", timezone),
				 errhint("Use an IANA name such as \"Europe/Paris\" or \"UTC\"; see pg_timezone_names.")));
	if (strlen(spec) > 200)
		bad_spec("...", "The spec is longer than 200 characters.");

	if (pg_strncasecmp(spec, "every ", 6) == 0 || pg_strncasecmp(spec, "@every ", 7) == 0)
	{
		out->is_interval = true;
		out->interval_ms = parse_every(spec, strchr(spec, ' ') + 1);
		return;
	}
	if (spec[0] == '@')
	{
		const char *m = spec + 1;

		if (strcmp(m, "yearly") == 0 || strcmp(m, "annually") == 0)
			spec = "0 0 1 1 *";
		else if (strcmp(m, "monthly") == 0)
			spec = "0 0 1 * *";
		else if (strcmp(m, "weekly") == 0)
			spec = "0 0 * * 0";
		else if (strcmp(m, "daily") == 0 || strcmp(m, "midnight") == 0)
			spec = "0 0 * * *";
		else if (strcmp(m, "hourly") == 0)
			spec = "0 * * * *";
		else
			bad_spec(spec, "Unknown macro.");
	}

	copy = pstrdup(spec);
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
	{
		if (n == 6)
			bad_spec(spec, "A cron expression has 5 or 6 fields.");
		fields[n++] = tok;
	}
	if (n != 5 && n != 6)
		bad_spec(spec, "A cron expression has 5 or 6 fields.");
	if (n == 6)
	{
		out->seconds = parse_field(spec, fields[0], 0, 59, NULL, 0, &star);
		off = 1;
	}
	else
		out->seconds = 1;		/* second 0 */
	out->minutes = parse_field(spec, fields[off], 0, 59, NULL, 0, &star);
	out->hours = (uint32) parse_field(spec, fields[off + 1], 0, 23, NULL, 0, &star);
	out->days = (uint32) parse_field(spec, fields[off + 2], 1, 31, NULL, 0, &out->days_star);
	out->months = (uint32) parse_field(spec, fields[off + 3], 1, 12, month_names, 1, &star);
	out->weekdays = (uint32) parse_field(spec, fields[off + 4], 0, 7, day_names, 0, &out->weekdays_star);
	if (out->weekdays & (1 << 7))
		out->weekdays = (out->weekdays | 1) & 0x7f;	/* 7 is Sunday too */
}

static bool
day_matches(const CronSpec *s, int year, int month, int day)
{
	bool		dom = (s->days >> day) & 1;
	bool		dow = (s->weekdays >> j2day(date2j(year, month, day))) & 1;

	if (s->days_star && s->weekdays_star)
		return true;
	if (s->days_star)
		return dow;
	if (s->weekdays_star)
		return dom;
	return dom || dow;
}

static int
days_in_month(int year, int month)
{
	return day_tab[isleap(year)][month - 1];
}

/*
 * durable_cron_next: the first fire time strictly after 'after'.  Cron specs walk
 * local time field by field (month, day, hour, minute, second), so the
 * search takes at most a few thousand steps even for rare specs; it gives
 * up after 5 years (a spec such as "0 0 31 2 *" never fires).  Interval
 * specs count whole intervals from 'anchor'.  Returns 0 for never.
 */
TimestampTz
durable_cron_next(const CronSpec *s, TimestampTz after, TimestampTz anchor)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	int			limit_year;
	int			steps = 0;

	if (s->is_interval)
	{
		int64		step = s->interval_ms * 1000;
		int64		k;

		if (after < anchor)
			return anchor;
		k = (after - anchor) / step + 1;
		return anchor + k * step;
	}

	if (timestamp2tm(after, &tz, &tm, &fsec, NULL, s->tz) != 0)
		return 0;
	tm.tm_sec += 1;				/* strictly after, on whole seconds */
	limit_year = tm.tm_year + 5;
	for (;;)
	{
		/* normalize carries */
		if (tm.tm_sec > 59)
		{
			tm.tm_sec = 0;
			tm.tm_min++;
		}
		if (tm.tm_min > 59)
		{
			tm.tm_min = 0;
			tm.tm_hour++;
		}
		if (tm.tm_hour > 23)
		{
			tm.tm_hour = 0;
			tm.tm_mday++;
		}
		if (tm.tm_mday > days_in_month(tm.tm_year, tm.tm_mon))
		{
			tm.tm_mday = 1;
			tm.tm_mon++;
		}
		if (tm.tm_mon > 12)
		{
			tm.tm_mon = 1;
			tm.tm_year++;
		}
		if (tm.tm_year > limit_year || ++steps > 100000)
			return 0;

		if (!((s->months >> tm.tm_mon) & 1))
		{
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			if (tm.tm_mon > 12)
			{
				tm.tm_mon = 1;
				tm.tm_year++;
			}
			continue;
		}
		if (!day_matches(s, tm.tm_year, tm.tm_mon, tm.tm_mday))
		{
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			continue;
		}
		if (!((s->hours >> tm.tm_hour) & 1))
		{
			tm.tm_hour++;
			tm.tm_min = tm.tm_sec = 0;
			continue;
		}
		if (!((s->minutes >> tm.tm_min) & 1))
		{
			tm.tm_min++;
			tm.tm_sec = 0;
			continue;
		}
		if (!((s->seconds >> tm.tm_sec) & 1))
		{
			tm.tm_sec++;
			continue;
		}
		break;
	}
	{
		Timestamp	result;
		int			offset = DetermineTimeZoneOffset(&tm, s->tz);

		if (tm2timestamp(&tm, 0, &offset, &result) != 0)
			return 0;
		/* a local time repeated by a DST change fires once, the first time */
		if (result <= after)
			return durable_cron_next(s, after + USECS_PER_SEC * 3600, anchor);
		return result;
	}
}
