/*
 * banned.h - functions that must not be used in this codebase (after git's
 * banned.h). Included by every translation unit through the build flags.
 * Use snprintf, memcpy with a checked length, or the th_ helpers instead.
 */
#ifndef TH_BANNED_H
#define TH_BANNED_H

#define TH_BANNED(func) sorry_##func##_is_banned_in_theater

#undef strcpy
#define strcpy(x, y) TH_BANNED(strcpy)
#undef strcat
#define strcat(x, y) TH_BANNED(strcat)
#undef sprintf
#define sprintf(...) TH_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) TH_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) TH_BANNED(strtok)
#undef gets
#define gets(x) TH_BANNED(gets)

#endif
