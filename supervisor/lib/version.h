/* version.h — the one place the version is written. */
#pragma once

#define TENANTD_VERSION "0.2.0"
