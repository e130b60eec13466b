/* units.h — human units, parsed exactly and strictly, and printed back canonically.
 *
 *   size      "512M" "1.5G" "64KiB" "10MB" "4096"      -> bytes      (K,M,G,T binary;
 *                                                                    KB,MB,GB,TB decimal)
 *   rate      "20mbit" "512kbit" "1gbit/s" "800bit"    -> bits/s     (decimal, as tc)
 *   duration  "30s" "1h30m" "250ms" "1.5s" "7d"        -> milliseconds
 *   cpu       "1.5" "0.25" "4"                         -> millicpus  (at most 3 decimals)
 *   percent   "90%" "99.5%"                            -> basis points (1% = 100)
 *
 * Pure functions: no allocation, no system calls. On failure they return -EINVAL (bad
 * syntax or unit) or -ERANGE (overflow), leave the output untouched, and write one
 * sentence into `why` saying what was wrong and what is accepted. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define UNITS_WHY_MAX 192
#define UNITS_FMT_MAX 32

int parse_size(const char *s, uint64_t *ret_bytes, char *why, size_t why_len);
int parse_rate(const char *s, uint64_t *ret_bits, char *why, size_t why_len);
int parse_duration(const char *s, uint64_t *ret_ms, char *why, size_t why_len);
int parse_cpu(const char *s, uint32_t *ret_millicpus, char *why, size_t why_len);
int parse_percent(const char *s, uint32_t *ret_basis_points, char *why, size_t why_len);

/* Canonical forms that the parsers above accept back unchanged in value:
 * format_size(1610612736) = "1536M", format_rate(20000000) = "20mbit",
 * format_duration(5400000) = "1h30m", format_cpu(1500) = "1.5",
 * format_percent(9050) = "90.5%". `buf` must hold UNITS_FMT_MAX bytes. */
char *format_size(uint64_t bytes, char *buf);
char *format_rate(uint64_t bits, char *buf);
char *format_duration(uint64_t ms, char *buf);
char *format_cpu(uint32_t millicpus, char *buf);
char *format_percent(uint32_t basis_points, char *buf);
