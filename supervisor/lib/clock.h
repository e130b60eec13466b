/* clock.h — milliseconds from a clock: the one helper tenantd, tenantctl, the VM runner
 * and the guest agent use (header-only, so the guest agent needs no other object). */
#pragma once

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ms(clockid_t clk)
{
        struct timespec ts;
        clock_gettime(clk, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* For deadlines and intervals: never jumps with the wall clock. */
static inline uint64_t mono_ms(void)
{
        return clock_ms(CLOCK_MONOTONIC);
}

/* For what people read: timestamps in events and logs. */
static inline uint64_t wall_ms(void)
{
        return clock_ms(CLOCK_REALTIME);
}
