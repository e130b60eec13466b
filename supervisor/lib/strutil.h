/* strutil.h — small string helpers shared by the parsers. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Edit distance counting adjacent swaps as one step, capped: returns cap+1 as soon as
 * the distance exceeds cap. */
size_t edit_distance(const char *a, const char *b, size_t cap);

/* The candidate nearest to `word` if it is close enough to be a plausible typo
 * (distance <= 2, or <= 1 for words of up to 4 characters), or else the only candidate
 * that contains a word of 4 or more characters; NULL when nothing fits. */
const char *suggest_nearest(const char *word, const char *const *candidates, size_t n);

/* True when s is non-empty and every byte is in [a-z0-9-], not starting or ending
 * with '-'. */
bool is_simple_name(const char *s);
