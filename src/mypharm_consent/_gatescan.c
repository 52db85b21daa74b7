/*
 * Optional compiled searches of mypharm_consent.gating (mypharm_consent._gatescan).
 *
 * Gating reads a page in two steps: first it finds where the page mentions
 * something gating may act on (``data-consent`` in any case, URL authorities
 * that may name a declared host, separators written as character
 * references), then, on the quick read, where the tokenizer's state changes
 * (comments, raw text elements, <noscript>, <head>, media containers) and
 * whether any quoted attribute value holds a ">". In pure Python each of
 * those is a regular expression over the whole page, and together they are
 * most of what a page never seen before costs. The functions below give the
 * very same answers in one pass each; the regular expressions in gating.py
 * stay the definition, used alone when this module is missing or when
 * MYPHARM_CONSENT_SPEEDUPS is 0, and a property test compares the two on
 * arbitrary text. skim() then reads the page as _Page.skim does, for a page
 * whose tags to gate were all decided before (the usual case: the same
 * third-party tags come back on every page), and leaves anything else to
 * the Python read; a property test compares the pages both make.
 *
 * Every pattern mirrored here is ASCII-only, so characters above 127 only
 * ever count as "not one of these". The scanners are written once over a
 * character reader and specialised for the three string kinds of PEP 393.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#if defined(__SSE2__)
#include <emmintrin.h>
#define HAVE_SSE2 1
#endif
#else
#define ALWAYS_INLINE inline
#endif

static ALWAYS_INLINE Py_UCS4 at(const void *data, int kind, Py_ssize_t index) {
    if (kind == PyUnicode_1BYTE_KIND) {
        return ((const Py_UCS1 *)data)[index];
    }
    if (kind == PyUnicode_2BYTE_KIND) {
        return ((const Py_UCS2 *)data)[index];
    }
    return ((const Py_UCS4 *)data)[index];
}

/* The first index in [index, end) holding one of the `count` ASCII `targets`, or `end`.
 * Sixteen bytes at a time where SSE2 is there (every x86-64): most of a page is
 * text no search here stops on. */
static ALWAYS_INLINE Py_ssize_t find_any(const void *data, int kind, Py_ssize_t index,
                                         Py_ssize_t end, const char *targets, int count) {
#ifdef HAVE_SSE2
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *text = (const Py_UCS1 *)data;
        for (; index + 16 <= end; index += 16) {
            __m128i block = _mm_loadu_si128((const __m128i *)(text + index));
            __m128i hits = _mm_setzero_si128();
            for (int t = 0; t < count; t++) {
                hits = _mm_or_si128(hits, _mm_cmpeq_epi8(block, _mm_set1_epi8(targets[t])));
            }
            int mask = _mm_movemask_epi8(hits);
            if (mask != 0) {
                return index + __builtin_ctz((unsigned)mask);
            }
        }
    } else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *text = (const Py_UCS2 *)data;
        for (; index + 8 <= end; index += 8) {
            __m128i block = _mm_loadu_si128((const __m128i *)(text + index));
            __m128i hits = _mm_setzero_si128();
            for (int t = 0; t < count; t++) {
                hits = _mm_or_si128(hits, _mm_cmpeq_epi16(block, _mm_set1_epi16(targets[t])));
            }
            int mask = _mm_movemask_epi8(hits);
            if (mask != 0) {
                return index + __builtin_ctz((unsigned)mask) / 2;
            }
        }
    }
#endif
    for (; index < end; index++) {
        Py_UCS4 c = at(data, kind, index);
        for (int t = 0; t < count; t++) {
            if (c == (Py_UCS4)targets[t]) {
                return index;
            }
        }
    }
    return end;
}

/* `scanner(kind, ...)` for the width `text` is stored in, each width a copy of its own
 * with the reads of `at` specialised. */
#define BY_WIDTH(text, scanner, ...)                                                           \
    (PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND                                              \
         ? scanner(PyUnicode_1BYTE_KIND, __VA_ARGS__)                                          \
     : PyUnicode_KIND(text) == PyUnicode_2BYTE_KIND ? scanner(PyUnicode_2BYTE_KIND, __VA_ARGS__) \
                                                    : scanner(PyUnicode_4BYTE_KIND, __VA_ARGS__))

/* 0 once the characters of `text` can be read in place (always, from Python 3.12). */
static int ready(PyObject *text) {
#if PY_VERSION_HEX < 0x030C0000
    return PyUnicode_READY(text);
#else
    (void)text;
    return 0;
#endif
}

static ALWAYS_INLINE int is_lower(Py_UCS4 c) { return c >= 'a' && c <= 'z'; }
static ALWAYS_INLINE int is_upper(Py_UCS4 c) { return c >= 'A' && c <= 'Z'; }
static ALWAYS_INLINE int is_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }
static ALWAYS_INLINE int is_letter(Py_UCS4 c) { return is_lower(c) || is_upper(c); }
static ALWAYS_INLINE int is_hex(Py_UCS4 c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static ALWAYS_INLINE Py_UCS4 ascii_lower(Py_UCS4 c) { return is_upper(c) ? c + 32 : c; }

/* [\t\n\f\r ]: the HTML standard's whitespace. */
static ALWAYS_INLINE int is_space(Py_UCS4 c) {
    return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

/* [\t\n\r]: what URL parsers strip from anywhere in a URL. */
static ALWAYS_INLINE int is_noise(Py_UCS4 c) { return c == '\t' || c == '\n' || c == '\r'; }

/* [^/\\?#\f "'<>]: a character of a URL authority as gating reads it. */
static ALWAYS_INLINE int in_authority(Py_UCS4 c) {
    return !(c == '/' || c == '\\' || c == '?' || c == '#' || c == '\f' || c == ' ' || c == '"' ||
             c == '\'' || c == '<' || c == '>');
}

/* Whether `word` (ASCII, lower case) is spelt at `index`, wholly before `end`. */
static ALWAYS_INLINE int spelt(const void *data, int kind, Py_ssize_t index, Py_ssize_t end,
                               const char *word, Py_ssize_t length) {
    if (index + length > end) {
        return 0;
    }
    for (Py_ssize_t k = 0; k < length; k++) {
        if (at(data, kind, index + k) != (Py_UCS4)(unsigned char)word[k]) {
            return 0;
        }
    }
    return 1;
}

/* Append `position` to the list `found`: 0, or -1 on error. */
static int append_position(PyObject *found, Py_ssize_t position) {
    PyObject *number = PyLong_FromSsize_t(position);
    if (number == NULL) {
        return -1;
    }
    int status = PyList_Append(found, number);
    Py_DECREF(number);
    return status;
}

/* ---- landmarks(): _QUOTED_GT and _LANDMARK of gating.py ------------------ */

/* The next position of each character the quoted-">" check looks for, found
 * sixteen bytes at a time and kept while it lies ahead (so each part of the page is
 * searched once per character, however many attribute values it holds). */
typedef struct {
    Py_ssize_t gt, double_quote, single_quote;
} ahead;

static ALWAYS_INLINE Py_ssize_t next_of(const void *data, int kind, Py_ssize_t *cached,
                                        Py_ssize_t from, Py_ssize_t end, const char *target) {
    if (*cached < from) {
        *cached = find_any(data, kind, from, end, target, 1);
    }
    return *cached;
}

/* _QUOTED_GT at `index` (an "="): =[\t\n\f\r ]*+(?:"[^">]*+>|'[^'>]*+>) */
static ALWAYS_INLINE int quoted_gt(const void *data, int kind, Py_ssize_t index,
                                   Py_ssize_t end, ahead *next) {
    Py_ssize_t k = index + 1;
    while (k < end && is_space(at(data, kind, k))) {
        k++;
    }
    if (k >= end) {
        return 0;
    }
    Py_UCS4 quote = at(data, kind, k);
    if (quote != '"' && quote != '\'') {
        return 0;
    }
    Py_ssize_t gt = next_of(data, kind, &next->gt, k + 1, end, ">");
    Py_ssize_t closing = quote == '"'
                             ? next_of(data, kind, &next->double_quote, k + 1, end, "\"")
                             : next_of(data, kind, &next->single_quote, k + 1, end, "'");
    return gt < end && gt < closing;
}

typedef struct {
    const char *text;
    Py_ssize_t length;
} word;

#define WORD(text) {text, sizeof text - 1}
static const word container_names[] = {WORD("video"), WORD("audio"), WORD("picture")};

/* Whether a delimiter ([\t\n\f\r />]) is at `index`, before `end`. */
static ALWAYS_INLINE int delimiter_at(const void *data, int kind, Py_ssize_t index,
                                      Py_ssize_t end) {
    if (index >= end) {
        return 0;
    }
    Py_UCS4 c = at(data, kind, index);
    return is_space(c) || c == '/' || c == '>';
}

/* The end of a tag name from `index`: [^\t\n\f\r />]*+ */
static ALWAYS_INLINE Py_ssize_t name_end(const void *data, int kind, Py_ssize_t index,
                                         Py_ssize_t end) {
    while (index < end && !delimiter_at(data, kind, index, end)) {
        index++;
    }
    return index;
}

/* A name at `index` followed by a delimiter ([\t\n\f\r />]) before `end`. */
static ALWAYS_INLINE int named(const void *data, int kind, Py_ssize_t index, Py_ssize_t end,
                               const word names[], size_t count) {
    if (index >= end) {
        return 0;
    }
    Py_UCS4 first = at(data, kind, index);
    for (size_t n = 0; n < count; n++) {
        Py_ssize_t length = names[n].length;
        if (first == (Py_UCS4)names[n].text[0] &&
            spelt(data, kind, index, end, names[n].text, length) &&
            delimiter_at(data, kind, index + length, end)) {
            return 1;
        }
    }
    return 0;
}

/* Whether the lower-case run [start, start + length) is `word`. */
#define IS(word) (length == (Py_ssize_t)(sizeof word - 1) && spelt(data, kind, start, end, word, length))

/* _LANDMARK at `index` (a "<"): 1 for a landmark, 2 for a name with a capital, else 0.
 * Every name there is lower-case letters followed by a delimiter, so only a run of
 * lower-case letters of a name's length, with a delimiter after it, can be one. */
static ALWAYS_INLINE int landmark_at(const void *data, int kind, Py_ssize_t index,
                                     Py_ssize_t end) {
    Py_ssize_t after = index + 1;
    if (spelt(data, kind, after, end, "!--", 3)) {
        return 1;
    }
    int closing = after < end && at(data, kind, after) == '/';
    Py_ssize_t start = after + closing, k = start;
    while (k < end && is_lower(at(data, kind, k))) {
        k++;
    }
    if (k >= end) {
        return 0;
    }
    if (is_upper(at(data, kind, k))) {
        return 2;
    }
    if (!delimiter_at(data, kind, k, end)) {
        return 0;
    }
    Py_ssize_t length = k - start;
    if (IS("video") || IS("audio") || IS("picture")) {
        return 1;
    }
    if (closing) {
        return 0;
    }
    return IS("script") || IS("style") || IS("textarea") || IS("title") || IS("xmp") ||
           IS("iframe") || IS("noembed") || IS("noframes") || IS("noscript") ||
           IS("plaintext") || IS("head");
}

#undef IS

/* One place landmarks_of stops at (an "=" or a "<"): 0 to go on, 1 when the quick read
 * does not hold, -1 on error. */
static ALWAYS_INLINE int landmark_stop(const void *data, int kind, Py_ssize_t i, Py_ssize_t end,
                                       ahead *next, PyObject *found) {
    if (at(data, kind, i) == '=') {
        return quoted_gt(data, kind, i, end, next);
    }
    int kind_of = landmark_at(data, kind, i, end);
    if (kind_of == 2) {
        return 1;
    }
    return kind_of == 1 && append_position(found, i) < 0 ? -1 : 0;
}

/* 0 and the landmarks appended to `found`; 1 when the quick read does not hold; -1 on error.
 * On a Latin-1 page every "=" and "<" of sixteen characters is found at once, then each
 * is looked at in turn: a page holds one every sixteen characters or so. */
static ALWAYS_INLINE int landmarks_of(int kind, const void *data, Py_ssize_t end,
                                      PyObject *found) {
    ahead next = {-1, -1, -1};
    Py_ssize_t i = 0;
#ifdef HAVE_SSE2
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *text = (const Py_UCS1 *)data;
        const __m128i equals = _mm_set1_epi8('='), opening = _mm_set1_epi8('<');
        for (; i + 16 <= end; i += 16) {
            __m128i block = _mm_loadu_si128((const __m128i *)(text + i));
            unsigned mask = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(block, equals), _mm_cmpeq_epi8(block, opening)));
            for (; mask != 0; mask &= mask - 1) {
                int status = landmark_stop(data, kind, i + __builtin_ctz(mask), end, &next, found);
                if (status != 0) {
                    return status;
                }
            }
        }
    }
#endif
    for (i = find_any(data, kind, i, end, "=<", 2); i < end;
         i = find_any(data, kind, i + 1, end, "=<", 2)) {
        int status = landmark_stop(data, kind, i, end, &next, found);
        if (status != 0) {
            return status;
        }
    }
    return 0;
}

PyDoc_STRVAR(landmarks_doc,
             "landmarks(html, limit, /)\n--\n\n"
             "The starts of the landmarks (``_LANDMARK``) in ``html[:limit]``, in order, or\n"
             "``None`` when a quoted attribute value there holds a \">\" (``_QUOTED_GT``) or a\n"
             "tag name there has a capital letter: the quick read does not hold then.");

static PyObject *landmarks(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "landmarks() takes a str and an int");
        return NULL;
    }
    PyObject *html = args[0];
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (ready(html) < 0) {
        return NULL;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(html);
    Py_ssize_t end = limit < 0 ? 0 : limit > length ? length : limit;
    PyObject *found = PyList_New(0);
    if (found == NULL) {
        return NULL;
    }
    const void *data = PyUnicode_DATA(html);
    int status = BY_WIDTH(html, landmarks_of, data, end, found);
    if (status != 0) {
        Py_DECREF(found);
        if (status < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return found;
}

/* ---- mentions(): _CONSENT_TAIL, _ENCODED_SEPARATOR and the authorities --- */

/* _ENCODED_SEPARATOR at `index` (an "&"). */
static ALWAYS_INLINE int encoded_separator(const void *data, int kind, Py_ssize_t index,
                                           Py_ssize_t end) {
    Py_ssize_t k = index + 1;
    if (k >= end) {
        return 0;
    }
    Py_UCS4 c = at(data, kind, k);
    if (c == '#') {
        k++;
        int hex = k < end && (at(data, kind, k) == 'x' || at(data, kind, k) == 'X');
        if (hex) {
            k++;
        }
        while (k < end && at(data, kind, k) == '0') {
            k++;
        }
        /* The whole run of digits after the zeros must be one of the values. */
        char digits[3];
        Py_ssize_t count = 0;
        while (k < end && (hex ? is_hex(at(data, kind, k)) : is_digit(at(data, kind, k)))) {
            if (count == 2) {
                return 0;
            }
            digits[count++] = (char)ascii_lower(at(data, kind, k));
            k++;
        }
        digits[count] = '\0';
        if (hex) {
            return strcmp(digits, "2f") == 0 || strcmp(digits, "5c") == 0 ||
                   strcmp(digits, "3a") == 0 || strcmp(digits, "9") == 0 ||
                   strcmp(digits, "a") == 0 || strcmp(digits, "d") == 0;
        }
        return strcmp(digits, "47") == 0 || strcmp(digits, "92") == 0 ||
               strcmp(digits, "58") == 0 || strcmp(digits, "9") == 0 ||
               strcmp(digits, "10") == 0 || strcmp(digits, "13") == 0;
    }
    /* (?:sol|bsol|colon|Tab|NewLine)(?![A-Za-z]): the whole run of letters. */
    static const word names[] = {
        WORD("sol"), WORD("bsol"), WORD("colon"), WORD("Tab"), WORD("NewLine"),
    };
    Py_ssize_t start = k;
    while (k < end && is_letter(at(data, kind, k))) {
        k++;
    }
    Py_ssize_t length = k - start;
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        if (names[n].length == length && spelt(data, kind, start, end, names[n].text, length)) {
            return 1;
        }
    }
    return 0;
}

/* The end of the authority starting at `index`. */
static ALWAYS_INLINE Py_ssize_t authority_end(const void *data, int kind, Py_ssize_t index,
                                              Py_ssize_t end) {
    while (index < end && in_authority(at(data, kind, index))) {
        index++;
    }
    return index;
}

/* Add html[start:stop] to `tokens`: 0, or -1 on error. */
static int add_token(PyObject *html, Py_ssize_t start, Py_ssize_t stop, PyObject *tokens) {
    PyObject *token = PyUnicode_Substring(html, start, stop);
    if (token == NULL) {
        return -1;
    }
    int status = PySet_Add(tokens, token);
    Py_DECREF(token);
    return status;
}

/* Past the separators from `from` (slashes, backslashes too when `backslashes`, and
 * URL noise), add the authority there to `tokens`: where it ends, or -1 on error. */
static ALWAYS_INLINE Py_ssize_t take_authority(PyObject *html, const void *data, int kind,
                                               Py_ssize_t from, Py_ssize_t end, int backslashes,
                                               PyObject *tokens) {
    while (from < end) {
        Py_UCS4 c = at(data, kind, from);
        if (!(c == '/' || (backslashes && c == '\\') || is_noise(c))) {
            break;
        }
        from++;
    }
    Py_ssize_t stop = authority_end(data, kind, from, end);
    return add_token(html, from, stop, tokens) < 0 ? -1 : stop;
}

/* Whether the character after a "-" may start "consent", and after a slash or backslash
 * may go on to an authority: the others are passed over without a look. */
static ALWAYS_INLINE int mention_at(Py_UCS4 c, Py_UCS4 next, int hosts) {
    if (c == '-') {
        return next == 'c' || next == 'C';
    }
    if (!hosts) {
        return 0;
    }
    if (c == '/' || c == '\\') {
        return next == '/' || next == '\\' || is_noise(next);
    }
    return c == '&' || c == ':';
}

/* The next index from `index` where mentions_of has something to do (see mention_at), or
 * `end`; sixteen characters at a time on a Latin-1 page, each with the one after it (a
 * wider text is searched for the characters alone, each stop then looked at). */
static ALWAYS_INLINE Py_ssize_t next_mention(const void *data, int kind, Py_ssize_t index,
                                             Py_ssize_t end, int hosts) {
#ifdef HAVE_SSE2
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *text = (const Py_UCS1 *)data;
        for (; index + 17 <= end; index += 16) {
            __m128i here = _mm_loadu_si128((const __m128i *)(text + index));
            __m128i next = _mm_loadu_si128((const __m128i *)(text + index + 1));
            __m128i found = _mm_and_si128(
                _mm_cmpeq_epi8(here, _mm_set1_epi8('-')),
                _mm_cmpeq_epi8(_mm_or_si128(next, _mm_set1_epi8(0x20)), _mm_set1_epi8('c')));
            if (hosts) {
                __m128i slash = _mm_or_si128(_mm_cmpeq_epi8(here, _mm_set1_epi8('/')),
                                             _mm_cmpeq_epi8(here, _mm_set1_epi8('\\')));
                __m128i onward = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(next, _mm_set1_epi8('/')),
                                 _mm_cmpeq_epi8(next, _mm_set1_epi8('\\'))),
                    _mm_or_si128(_mm_cmpeq_epi8(next, _mm_set1_epi8('\t')),
                                 _mm_or_si128(_mm_cmpeq_epi8(next, _mm_set1_epi8('\n')),
                                              _mm_cmpeq_epi8(next, _mm_set1_epi8('\r')))));
                __m128i always = _mm_or_si128(_mm_cmpeq_epi8(here, _mm_set1_epi8('&')),
                                              _mm_cmpeq_epi8(here, _mm_set1_epi8(':')));
                found = _mm_or_si128(found, _mm_or_si128(_mm_and_si128(slash, onward), always));
            }
            int mask = _mm_movemask_epi8(found);
            if (mask != 0) {
                return index + __builtin_ctz((unsigned)mask);
            }
        }
    }
#endif
    if (kind != PyUnicode_1BYTE_KIND) {
        return hosts ? find_any(data, kind, index, end, "-&:/\\", 5)
                     : find_any(data, kind, index, end, "-", 1);
    }
    for (; index < end; index++) {
        Py_UCS4 next = index + 1 < end ? at(data, kind, index + 1) : 0;
        if (mention_at(at(data, kind, index), next, hosts)) {
            return index;
        }
    }
    return end;
}

/* 0 with `positions` and `tokens` filled, 1 for an encoded separator, -1 on error. */
static ALWAYS_INLINE int mentions_of(int kind, PyObject *html, const void *data, Py_ssize_t end,
                                     int hosts, PyObject *positions, PyObject *tokens) {
    /* Each pattern is searched on its own in gating.py: a match of one does not
     * hide the text it covers from the others, only from itself. */
    Py_ssize_t authority_next = 0, colon_next = 0, backslashed_next = 0;
    int separator = 0;
    /* Constant per call site, so that the search is unrolled for each. */
#define NEXT_MENTION(from)                                                                     \
    (hosts ? next_mention(data, kind, (from), end, 1) : next_mention(data, kind, (from), end, 0))
    for (Py_ssize_t i = NEXT_MENTION(0); i < end; i = NEXT_MENTION(i + 1)) {
        Py_UCS4 c = at(data, kind, i);
        if (c == '-') {
            /* -[cC][oO][nN][sS][eE][nN][tT] with "data" (any case) before it. */
            static const char tail[] = "consent";
            Py_ssize_t k = 0;
            while (k < 7 && i + 1 + k < end &&
                   ascii_lower(at(data, kind, i + 1 + k)) == (Py_UCS4)tail[k]) {
                k++;
            }
            if (k == 7 && i >= 4 && ascii_lower(at(data, kind, i - 4)) == 'd' &&
                ascii_lower(at(data, kind, i - 3)) == 'a' &&
                ascii_lower(at(data, kind, i - 2)) == 't' &&
                ascii_lower(at(data, kind, i - 1)) == 'a') {
                if (append_position(positions, i - 4) < 0) {
                    return -1;
                }
            }
            continue;
        }
        if (!hosts || separator) {
            continue;
        }
        if (c == '&') {
            /* Every tag is read then: only data-consent is still looked for. */
            separator = encoded_separator(data, kind, i, end);
        } else if (c == ':') {
            /* _AFTER_COLON: :[/\\\t\n\r]*+(authority) */
            if (i >= colon_next) {
                colon_next = take_authority(html, data, kind, i + 1, end, 1, tokens);
                if (colon_next < 0) {
                    return -1;
                }
            }
        } else if (c == '/' || c == '\\') {
            /* _AUTHORITY: /[\t\n\r]*+/[/\t\n\r]*+(authority), slashes only;
             * _BACKSLASHED: the same with slashes or backslashes in any mix. */
            Py_ssize_t k = i + 1;
            while (k < end && is_noise(at(data, kind, k))) {
                k++;
            }
            if (k >= end) {
                continue;
            }
            Py_UCS4 second = at(data, kind, k);
            if (c == '/' && second == '/' && i >= authority_next) {
                authority_next = take_authority(html, data, kind, k + 1, end, 0, tokens);
                if (authority_next < 0) {
                    return -1;
                }
            }
            if ((second == '/' || second == '\\') && i >= backslashed_next) {
                backslashed_next = take_authority(html, data, kind, k + 1, end, 1, tokens);
                if (backslashed_next < 0) {
                    return -1;
                }
            }
        }
    }
    return separator;
#undef NEXT_MENTION
}

PyDoc_STRVAR(mentions_doc,
             "mentions(html, hosts, /)\n--\n\n"
             "The starts of ``data-consent`` (any case) in ``html``, in order, and, when\n"
             "``hosts`` is true, the set of the URL authorities ``_AUTHORITY``,\n"
             "``_AFTER_COLON`` and ``_BACKSLASHED`` find there (an empty set otherwise);\n"
             "``None`` instead of the set when a separator is written as a character\n"
             "reference (``_ENCODED_SEPARATOR``).");

static PyObject *mentions(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "mentions() takes a str and a bool");
        return NULL;
    }
    PyObject *html = args[0];
    int hosts = PyObject_IsTrue(args[1]);
    if (hosts < 0 || ready(html) < 0) {
        return NULL;
    }
    PyObject *positions = PyList_New(0);
    PyObject *tokens = positions == NULL ? NULL : PySet_New(NULL);
    if (tokens == NULL) {
        Py_XDECREF(positions);
        return NULL;
    }
    Py_ssize_t end = PyUnicode_GET_LENGTH(html);
    const void *data = PyUnicode_DATA(html);
    /* With and without the hosts, each its own copy (the searches are unrolled). */
    int status = hosts ? BY_WIDTH(html, mentions_of, html, data, end, 1, positions, tokens)
                       : BY_WIDTH(html, mentions_of, html, data, end, 0, positions, tokens);
    if (status < 0) {
        Py_DECREF(positions);
        Py_DECREF(tokens);
        return NULL;
    }
    if (status == 1) {
        Py_DECREF(tokens);
        tokens = Py_NewRef(Py_None);
    }
    PyObject *result = PyTuple_Pack(2, positions, tokens);
    Py_DECREF(positions);
    Py_DECREF(tokens);
    return result;
}

/* ---- skip(): _SKIP of gating.py, what the full read passes over ------------ */

static const word start_names[] = {
    WORD("img"),     WORD("video"),  WORD("audio"),    WORD("source"),   WORD("track"),
    WORD("link"),    WORD("script"), WORD("iframe"),   WORD("style"),    WORD("textarea"),
    WORD("title"),   WORD("xmp"),    WORD("noembed"),  WORD("noframes"), WORD("picture"),
    WORD("head"),    WORD("noscript"), WORD("plaintext"),
};

/* The end of a run of `c`'s class from `index` (the class chosen by `which`). */
#define RUN(condition)                                                                         \
    while (k < end) {                                                                          \
        Py_UCS4 c = at(data, kind, k);                                                         \
        if (!(condition)) {                                                                    \
            break;                                                                             \
        }                                                                                      \
        k++;                                                                                   \
    }

/* The first ">" at or after `index`, or -1. */
static ALWAYS_INLINE Py_ssize_t closing(const void *data, int kind, Py_ssize_t index,
                                        Py_ssize_t end) {
    Py_ssize_t found = find_any(data, kind, index, end, ">", 1);
    return found < end ? found : -1;
}

/* _ATTRS then ">" from `index`: the end of the tag (after its ">"), or -1. */
static ALWAYS_INLINE Py_ssize_t attributes_end(const void *data, int kind, Py_ssize_t index,
                                               Py_ssize_t end) {
    Py_ssize_t k = index;
    while (k < end) {
        Py_UCS4 first = at(data, kind, k);
        if (first == '>') {
            return k + 1;
        }
        if (is_space(first) || first == '/') {
            RUN(is_space(c) || c == '/');
            continue;
        }
        /* A name: its first character may be "=", the others not. */
        k++;
        RUN(!(is_space(c) || c == '/' || c == '=' || c == '>'));
        /* (?:[WS]*+=[WS]*+(?:"[^"]*+"|'[^']*+'|[^WS>]*+))?+ */
        Py_ssize_t name_end = k;
        RUN(is_space(c));
        if (k < end && at(data, kind, k) == '=') {
            k++;
            RUN(is_space(c));
            Py_UCS4 quote = k < end ? at(data, kind, k) : 0;
            Py_ssize_t value = k;
            int quoted = 0;
            if (quote == '"' || quote == '\'') {
                Py_ssize_t q = k + 1;
                while (q < end && at(data, kind, q) != quote) {
                    q++;
                }
                if (q < end) {
                    k = q + 1;
                    quoted = 1;
                }
            }
            if (!quoted) {
                k = value;
                RUN(!(is_space(c) || c == '>'));
            }
        } else {
            k = name_end;
        }
    }
    return -1;
}

/* Whether a tag name at `index` is skipped: lower case first, not one of `names`
 * followed by a delimiter, no capital after its lower-case start. */
static ALWAYS_INLINE int plain_name(const void *data, int kind, Py_ssize_t index,
                                    Py_ssize_t end, const word names[], size_t count) {
    if (index >= end || !is_lower(at(data, kind, index))) {
        return 0;
    }
    if (named(data, kind, index, end, names, count)) {
        return 0;
    }
    Py_ssize_t k = index;
    RUN(is_lower(c));
    return !(k < end && is_upper(at(data, kind, k)));
}

/* Whether the sorted list of positions `triggers` has one in [start, stop): 1, 0, or -1
 * on error (an item that is not an int). */
static int holds_trigger(PyObject *triggers, Py_ssize_t start, Py_ssize_t stop) {
    Py_ssize_t low = 0, high = PyList_GET_SIZE(triggers);
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        Py_ssize_t value = PyLong_AsSsize_t(PyList_GET_ITEM(triggers, middle));
        if (value == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (value < start) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    if (low == PyList_GET_SIZE(triggers)) {
        return 0;
    }
    Py_ssize_t found = PyLong_AsSsize_t(PyList_GET_ITEM(triggers, low));
    if (found == -1 && PyErr_Occurred()) {
        return -1;
    }
    return found < stop;
}

static const word quiet_media[] = {WORD("img"), WORD("source"), WORD("track"), WORD("link")};

/* _COMMENT at `index` (a "<" followed by "!--"): <!--(?:-?>|(?s:.*?)--!?>), its end or -1. */
static ALWAYS_INLINE Py_ssize_t comment_end(const void *data, int kind, Py_ssize_t index,
                                            Py_ssize_t end) {
    Py_ssize_t body = index + 4;
    if (body < end && at(data, kind, body) == '>') {
        return body + 1;
    }
    if (spelt(data, kind, body, end, "->", 2)) {
        return body + 2;
    }
    for (Py_ssize_t q = find_any(data, kind, body, end, "-", 1); q < end;
         q = find_any(data, kind, q + 1, end, "-", 1)) {
        if (spelt(data, kind, q, end, "--", 2)) {
            if (spelt(data, kind, q + 2, end, ">", 1)) {
                return q + 3;
            }
            if (spelt(data, kind, q + 2, end, "!>", 2)) {
                return q + 4;
            }
        }
    }
    return -1;
}

/* One step of _SKIP at `index` (a "<"): where it ends, or -1 when no branch matches;
 * with `triggers`, also past an <img>, <source>, <track> or <link> holding none of them
 * (_QUIET_MEDIA); -2 on error. */
static ALWAYS_INLINE Py_ssize_t skip_markup(const void *data, int kind, Py_ssize_t index,
                                            Py_ssize_t end, PyObject *triggers) {
    Py_ssize_t k = index + 1;
    Py_UCS4 next = k < end ? at(data, kind, k) : 0;
    if (next == '!') {
        if (spelt(data, kind, k, end, "!--", 3)) {
            return comment_end(data, kind, index, end);
        }
        /* <!(?!--)[^>]*+> */
        Py_ssize_t gt = closing(data, kind, k + 1, end);
        return gt < 0 ? -1 : gt + 1;
    }
    if (next == '?') {
        Py_ssize_t gt = closing(data, kind, k + 1, end);
        return gt < 0 ? -1 : gt + 1;
    }
    if (next == '/') {
        Py_ssize_t name = k + 1;
        Py_UCS4 first = name < end ? at(data, kind, name) : 0;
        if (!is_letter(first)) {
            /* </(?![A-Za-z])[^>]*+> */
            Py_ssize_t gt = closing(data, kind, name, end);
            return gt < 0 ? -1 : gt + 1;
        }
        if (!plain_name(data, kind, name, end, container_names, 3)) {
            return -1;
        }
        return attributes_end(data, kind, name_end(data, kind, name, end), end);
    }
    if (!is_letter(next)) {
        /* <(?![A-Za-z!?/]): a "<" of text. */
        return index + 1;
    }
    if (triggers != NULL && named(data, kind, k, end, quiet_media, 4)) {
        Py_ssize_t stop = attributes_end(data, kind, name_end(data, kind, k, end), end);
        if (stop < 0) {
            return -1;
        }
        int held = holds_trigger(triggers, index, stop);
        return held < 0 ? -2 : held ? -1 : stop;
    }
    if (!plain_name(data, kind, k, end, start_names,
                    sizeof start_names / sizeof start_names[0])) {
        return -1;
    }
    return attributes_end(data, kind, name_end(data, kind, k, end), end);
}

/* Where the skip from `index` ends, or -1 on error. */
static ALWAYS_INLINE Py_ssize_t skip_of(int kind, const void *data, Py_ssize_t index,
                                        Py_ssize_t end, PyObject *triggers) {
    while (index < end) {
        index = find_any(data, kind, index, end, "<", 1);
        if (index >= end) {
            break;
        }
        Py_ssize_t after = skip_markup(data, kind, index, end, triggers);
        if (after == -2) {
            return -1;
        }
        if (after < 0) {
            break;
        }
        index = after;
    }
    return index;
}

#undef RUN

PyDoc_STRVAR(skip_doc,
             "skip(html, position, end, triggers=None, /)\n--\n\n"
             "Where ``_SKIP.match(html, position, end)`` ends: past the text, comments and\n"
             "tags gating has no business with, up to the first construct it must read.\n"
             "With ``triggers`` (a sorted list of positions), also past the ``<img>``,\n"
             "``<source>``, ``<track>`` and ``<link>`` tags that hold none of them.");

static PyObject *skip(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if ((nargs != 3 && nargs != 4) || !PyUnicode_Check(args[0]) ||
        (nargs == 4 && args[3] != Py_None && !PyList_Check(args[3]))) {
        PyErr_SetString(PyExc_TypeError, "skip() takes a str, two ints and a list or None");
        return NULL;
    }
    PyObject *triggers = nargs == 4 && args[3] != Py_None ? args[3] : NULL;
    PyObject *html = args[0];
    Py_ssize_t position = PyLong_AsSsize_t(args[1]);
    Py_ssize_t limit = position == -1 && PyErr_Occurred() ? -1 : PyLong_AsSsize_t(args[2]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (ready(html) < 0) {
        return NULL;
    }
    /* As the re module reads pos and endpos. */
    Py_ssize_t length = PyUnicode_GET_LENGTH(html);
    Py_ssize_t end = limit < 0 ? 0 : limit > length ? length : limit;
    Py_ssize_t start = position < 0 ? 0 : position;
    if (start > end) {
        /* re.match() finds nothing there at all: gating never asks for it. */
        PyErr_SetString(PyExc_ValueError, "skip() past the end");
        return NULL;
    }
    const void *data = PyUnicode_DATA(html);
    Py_ssize_t found = BY_WIDTH(html, skip_of, data, start, end, triggers);
    if (found < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(found);
}

/* ---- occurrences(): every place a text appears, overlaps included ------- */

/* The first index in [index, last] where `first` is and `final` is `offset` further
 * (both ASCII), or last + 1: comparing two characters at once leaves few candidates
 * to check in full, even for a first letter that is everywhere in the text. */
static ALWAYS_INLINE Py_ssize_t find_pair(const void *data, int kind, Py_ssize_t index,
                                          Py_ssize_t last, char first, char final,
                                          Py_ssize_t offset) {
#ifdef HAVE_SSE2
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *text = (const Py_UCS1 *)data;
        __m128i firsts = _mm_set1_epi8(first), finals = _mm_set1_epi8(final);
        for (; index + 15 <= last; index += 16) {
            __m128i head = _mm_loadu_si128((const __m128i *)(text + index));
            __m128i tail = _mm_loadu_si128((const __m128i *)(text + index + offset));
            int mask = _mm_movemask_epi8(
                _mm_and_si128(_mm_cmpeq_epi8(head, firsts), _mm_cmpeq_epi8(tail, finals)));
            if (mask != 0) {
                return index + __builtin_ctz((unsigned)mask);
            }
        }
    } else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *text = (const Py_UCS2 *)data;
        __m128i firsts = _mm_set1_epi16(first), finals = _mm_set1_epi16(final);
        for (; index + 7 <= last; index += 8) {
            __m128i head = _mm_loadu_si128((const __m128i *)(text + index));
            __m128i tail = _mm_loadu_si128((const __m128i *)(text + index + offset));
            int mask = _mm_movemask_epi8(
                _mm_and_si128(_mm_cmpeq_epi16(head, firsts), _mm_cmpeq_epi16(tail, finals)));
            if (mask != 0) {
                return index + __builtin_ctz((unsigned)mask) / 2;
            }
        }
    }
#endif
    for (; index <= last; index++) {
        if (at(data, kind, index) == (Py_UCS4)first &&
            at(data, kind, index + offset) == (Py_UCS4)final) {
            return index;
        }
    }
    return last + 1;
}

static ALWAYS_INLINE int occurrences_of(int kind, const void *data, Py_ssize_t end,
                                        PyObject *text, PyObject *positions) {
    const void *wanted = PyUnicode_DATA(text);
    int wanted_kind = PyUnicode_KIND(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    Py_UCS4 first = PyUnicode_READ(wanted_kind, wanted, 0);
    Py_UCS4 final = PyUnicode_READ(wanted_kind, wanted, length - 1);
    int ascii = first < 128 && final < 128;
    Py_ssize_t last = end - length;
    for (Py_ssize_t i = 0; i <= last; i++) {
        if (ascii) {
            i = find_pair(data, kind, i, last, (char)first, (char)final, length - 1);
            if (i > last) {
                break;
            }
        } else if (at(data, kind, i) != first) {
            continue;
        }
        Py_ssize_t k = 1;
        while (k < length && at(data, kind, i + k) == PyUnicode_READ(wanted_kind, wanted, k)) {
            k++;
        }
        if (k == length) {
            if (append_position(positions, i) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

PyDoc_STRVAR(occurrences_doc,
             "occurrences(html, text, positions, /)\n--\n\n"
             "Append to the list ``positions`` the start of every occurrence of ``text``\n"
             "in ``html``, in order, overlapping ones included (``text`` not empty).");

static PyObject *occurrences(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1]) ||
        !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "occurrences() takes two str and a list");
        return NULL;
    }
    PyObject *html = args[0], *text = args[1];
    if (ready(html) < 0 || ready(text) < 0) {
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(text) == 0) {
        PyErr_SetString(PyExc_ValueError, "occurrences() of an empty text");
        return NULL;
    }
    const void *data = PyUnicode_DATA(html);
    Py_ssize_t end = PyUnicode_GET_LENGTH(html);
    int status = BY_WIDTH(html, occurrences_of, data, end, text, args[2]);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- occurrences_all(): the same for several texts at once ---------------- */

/* At most this many different pairs of leading characters are looked for in one pass;
 * texts beyond that are searched for one by one. */
#define MAX_LEADS 4

/* Whether the ASCII text `text` (at least two characters) is at `index` of the Latin-1
 * page `page` of `end` characters. */
static ALWAYS_INLINE int latin1_at(const Py_UCS1 *page, Py_ssize_t end, Py_ssize_t index,
                                   PyObject *text) {
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    return index + length <= end &&
           memcmp(page + index, PyUnicode_1BYTE_DATA(text), (size_t)length) == 0;
}

/* The first index from `i` where one of the first `n` pairs of leading characters
 * starts, or `end`; `n` is constant at each call, so that the loop is unrolled. */
static ALWAYS_INLINE Py_ssize_t next_lead(const Py_UCS1 *page, Py_ssize_t i, Py_ssize_t end,
                                          const Py_UCS1 leads[][2], int n) {
#ifdef HAVE_SSE2
    __m128i firsts[MAX_LEADS], seconds[MAX_LEADS];
    for (int l = 0; l < n; l++) {
        firsts[l] = _mm_set1_epi8((char)leads[l][0]);
        seconds[l] = _mm_set1_epi8((char)leads[l][1]);
    }
    for (; i + 17 <= end; i += 16) {
        __m128i here = _mm_loadu_si128((const __m128i *)(page + i));
        __m128i next = _mm_loadu_si128((const __m128i *)(page + i + 1));
        __m128i hits =
            _mm_and_si128(_mm_cmpeq_epi8(here, firsts[0]), _mm_cmpeq_epi8(next, seconds[0]));
        for (int l = 1; l < n; l++) {
            hits = _mm_or_si128(hits, _mm_and_si128(_mm_cmpeq_epi8(here, firsts[l]),
                                                    _mm_cmpeq_epi8(next, seconds[l])));
        }
        int mask = _mm_movemask_epi8(hits);
        if (mask != 0) {
            return i + __builtin_ctz((unsigned)mask);
        }
    }
#endif
    for (; i + 1 < end; i++) {
        for (int l = 0; l < n; l++) {
            if (page[i] == leads[l][0] && page[i + 1] == leads[l][1]) {
                return i;
            }
        }
    }
    return end;
}

/* The occurrences of `count` ASCII texts of two characters or more in a Latin-1 page, in
 * one pass: each place where the first two characters of one of the `leads` pairs (one to
 * MAX_LEADS of them) are is checked against every text. Positions in order, each once
 * per text found there. */
static int occurrences_of_all(const Py_UCS1 *page, Py_ssize_t end, PyObject *const *texts,
                              Py_ssize_t count, const Py_UCS1 leads[][2], int lead_count,
                              PyObject *positions) {
    for (Py_ssize_t i = 0;; i++) {
        switch (lead_count) {
        case 1:
            i = next_lead(page, i, end, leads, 1);
            break;
        case 2:
            i = next_lead(page, i, end, leads, 2);
            break;
        case 3:
            i = next_lead(page, i, end, leads, 3);
            break;
        default:
            i = next_lead(page, i, end, leads, MAX_LEADS);
            break;
        }
        if (i >= end) {
            return 0;
        }
        for (Py_ssize_t t = 0; t < count; t++) {
            if (latin1_at(page, end, i, texts[t]) && append_position(positions, i) < 0) {
                return -1;
            }
        }
    }
}

PyDoc_STRVAR(occurrences_all_doc,
             "occurrences_all(html, texts, positions, /)\n--\n\n"
             "Append to the list ``positions`` the start of every occurrence of each of the\n"
             "``texts`` (a list of str, none empty) in ``html``, overlapping ones included:\n"
             "in increasing order, a position once for each text found there. The same as\n"
             "``occurrences()`` of each text, sorted, in one pass over a Latin-1 page for\n"
             "a few ASCII texts.");

static PyObject *occurrences_all(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyList_CheckExact(args[1]) ||
        !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "occurrences_all() takes a str and two lists");
        return NULL;
    }
    PyObject *html = args[0], *positions = args[2];
    if (ready(html) < 0) {
        return NULL;
    }
    /* A copy of the list of texts: what is looked for cannot change while it is. */
    PyObject *texts = PySequence_Tuple(args[1]);
    if (texts == NULL) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(texts);
    Py_UCS1 leads[MAX_LEADS][2];
    int lead_count = 0, together = PyUnicode_KIND(html) == PyUnicode_1BYTE_KIND;
    for (Py_ssize_t t = 0; t < count; t++) {
        PyObject *text = PyTuple_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text) || ready(text) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "occurrences_all() takes a list of str");
            }
            Py_DECREF(texts);
            return NULL;
        }
        if (PyUnicode_GET_LENGTH(text) == 0) {
            PyErr_SetString(PyExc_ValueError, "occurrences_all() of an empty text");
            Py_DECREF(texts);
            return NULL;
        }
        if (!together) {
            continue;
        }
        if (PyUnicode_GET_LENGTH(text) < 2 || !PyUnicode_IS_ASCII(text)) {
            together = 0;
            continue;
        }
        const Py_UCS1 *data = PyUnicode_1BYTE_DATA(text);
        int l = 0;
        while (l < lead_count && !(leads[l][0] == data[0] && leads[l][1] == data[1])) {
            l++;
        }
        if (l == lead_count) {
            if (lead_count == MAX_LEADS) {
                together = 0;
                continue;
            }
            leads[lead_count][0] = data[0];
            leads[lead_count][1] = data[1];
            lead_count++;
        }
    }
    int status = 0;
    if (count == 0) {
        /* Nothing to look for. */
    } else if (together) {
        status = occurrences_of_all(PyUnicode_1BYTE_DATA(html), PyUnicode_GET_LENGTH(html),
                                    &PyTuple_GET_ITEM(texts, 0), count, leads, lead_count,
                                    positions);
    } else {
        /* One pass per text, the positions found then put in order. */
        PyObject *found = PyList_New(0);
        const void *data = PyUnicode_DATA(html);
        Py_ssize_t end = PyUnicode_GET_LENGTH(html);
        for (Py_ssize_t t = 0; found != NULL && status == 0 && t < count; t++) {
            PyObject *text = PyTuple_GET_ITEM(texts, t);
            status = BY_WIDTH(html, occurrences_of, data, end, text, found);
        }
        if (found == NULL || status < 0 || PyList_Sort(found) < 0 ||
            PyList_SetSlice(positions, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, found) < 0) {
            status = -1;
        }
        Py_XDECREF(found);
    }
    Py_DECREF(texts);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- skim(): _Page.skim of gating.py, the quick read of a page ---------- */

/* The tag names _START_TAG knows, in any case; each one's number below. */
static const word tag_names[] = {
    WORD("script"), WORD("iframe"), WORD("img"),      WORD("link"),     WORD("video"),
    WORD("audio"),  WORD("source"), WORD("track"),    WORD("picture"),  WORD("head"),
    WORD("noscript"), WORD("plaintext"), WORD("style"), WORD("textarea"), WORD("title"),
    WORD("xmp"),    WORD("noembed"), WORD("noframes"),
};
enum {
    TAG_SCRIPT, TAG_IFRAME, TAG_IMG, TAG_LINK, TAG_VIDEO, TAG_AUDIO, TAG_SOURCE, TAG_TRACK,
    TAG_PICTURE, TAG_HEAD, TAG_NOSCRIPT, TAG_PLAINTEXT,
};
/* Numbers below this one load something (_URL_ATTRIBUTES). */
#define TAG_LOADING TAG_HEAD
#define IS_CONTAINER(tag) ((tag) == TAG_VIDEO || (tag) == TAG_AUDIO || (tag) == TAG_PICTURE)

/* Whether `word` (ASCII, lower case) is spelt at `index` in any case, wholly before `end`. */
static ALWAYS_INLINE int spelt_folded(const void *data, int kind, Py_ssize_t index,
                                      Py_ssize_t end, const char *text, Py_ssize_t length) {
    if (index + length > end) {
        return 0;
    }
    for (Py_ssize_t k = 0; k < length; k++) {
        if (ascii_lower(at(data, kind, index + k)) != (Py_UCS4)(unsigned char)text[k]) {
            return 0;
        }
    }
    return 1;
}

/* The number of the name of `names` spelt (any case) at `index` with a delimiter after
 * it, or -1. */
static ALWAYS_INLINE int name_folded(const void *data, int kind, Py_ssize_t index,
                                     Py_ssize_t end, const word names[], int count) {
    for (int n = 0; n < count; n++) {
        Py_ssize_t length = names[n].length;
        if (spelt_folded(data, kind, index, end, names[n].text, length) &&
            delimiter_at(data, kind, index + length, end)) {
            return n;
        }
    }
    return -1;
}

/* _ANY_TAG (`closing`: _ANY_END_TAG) matched at `index`: its end, or -1. */
static ALWAYS_INLINE Py_ssize_t any_tag_end(const void *data, int kind, Py_ssize_t index,
                                            Py_ssize_t end, int closing) {
    Py_ssize_t k = index + 1;
    if (k < end && at(data, kind, k) == '/') {
        k++;
    } else if (closing) {
        return -1;
    }
    if (k >= end || !is_letter(at(data, kind, k))) {
        return -1;
    }
    return attributes_end(data, kind, name_end(data, kind, k + 1, end), end);
}

/* The first "</name" (any case) with a delimiter after it at or after `index`
 * (_RAW_END[name]), or -1. */
static ALWAYS_INLINE Py_ssize_t raw_end(const void *data, int kind, Py_ssize_t index,
                                        Py_ssize_t end, const word *name) {
    for (Py_ssize_t i = find_any(data, kind, index, end, "<", 1); i < end;
         i = find_any(data, kind, i + 1, end, "<", 1)) {
        if (spelt(data, kind, i + 1, end, "/", 1) &&
            spelt_folded(data, kind, i + 2, end, name->text, name->length) &&
            delimiter_at(data, kind, i + 2 + name->length, end)) {
            return i;
        }
    }
    return -1;
}

/* Whether "script" (any case) and a delimiter are at `index`. */
static ALWAYS_INLINE int script_named(const void *data, int kind, Py_ssize_t index,
                                      Py_ssize_t end) {
    return spelt_folded(data, kind, index, end, "script", 6) &&
           delimiter_at(data, kind, index + 6, end);
}

/* _script_end: where the "</script" that really ends a script body starts (or `end`),
 * through the script data, escaped and double-escaped states. */
static ALWAYS_INLINE Py_ssize_t script_end(const void *data, int kind, Py_ssize_t index,
                                           Py_ssize_t end) {
    int state = 0;
    Py_ssize_t i = index;
    while (1) {
        i = state == 0 ? find_any(data, kind, i, end, "<", 1) : find_any(data, kind, i, end, "<-", 2);
        if (i >= end) {
            return end;
        }
        Py_UCS4 c = at(data, kind, i);
        if (c == '-') {
            if (spelt(data, kind, i, end, "-->", 3)) {
                state = 0;
                i += 3;
            } else {
                i++;
            }
            continue;
        }
        int slash = spelt(data, kind, i + 1, end, "/", 1);
        if (state == 0) {
            if (spelt(data, kind, i + 1, end, "!--", 3)) {
                /* "<!-->" closes at once: the dashes of "<!--" count for "-->". */
                state = 1;
                i += 2;
                continue;
            }
            if (slash && script_named(data, kind, i + 2, end)) {
                return i;
            }
        } else if (slash && script_named(data, kind, i + 2, end)) {
            if (state == 1) {
                return i;
            }
            state = 1;
            i += 9;
            continue;
        } else if (state == 1 && script_named(data, kind, i + 1, end)) {
            state = 2;
            i += 8;
            continue;
        }
        i++;
    }
}

/* The last index in [from, to) holding `c`, or -1. */
static ALWAYS_INLINE Py_ssize_t rfind_char(const void *data, int kind, Py_ssize_t from,
                                           Py_ssize_t to, char c) {
    if (kind == PyUnicode_1BYTE_KIND && to > from) {
        const Py_UCS1 *text = (const Py_UCS1 *)data;
        const Py_UCS1 *found = memrchr(text + from, c, (size_t)(to - from));
        return found == NULL ? -1 : found - text;
    }
    for (Py_ssize_t i = to - 1; i >= from; i--) {
        if (at(data, kind, i) == (Py_UCS4)c) {
            return i;
        }
    }
    return -1;
}

/* _OPENING.search(html, from, to): the first "<" followed by [A-Za-z!?/], both before
 * `to`; or -1. */
static ALWAYS_INLINE Py_ssize_t opening_in(const void *data, int kind, Py_ssize_t from,
                                           Py_ssize_t to) {
    for (Py_ssize_t i = find_any(data, kind, from, to, "<", 1); i + 1 < to;
         i = find_any(data, kind, i + 1, to, "<", 1)) {
        Py_UCS4 next = at(data, kind, i + 1);
        if (is_letter(next) || next == '!' || next == '?' || next == '/') {
            return i;
        }
    }
    return -1;
}

/* A growable array of positions. */
typedef struct {
    Py_ssize_t *items, count, capacity;
} positions;

static int positions_add(positions *list, Py_ssize_t value) {
    if (list->count == list->capacity) {
        Py_ssize_t capacity = list->capacity ? 2 * list->capacity : 32;
        Py_ssize_t *grown = PyMem_Realloc(list->items, (size_t)capacity * sizeof(Py_ssize_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = value;
    return 0;
}

/* One quick read: what _Page holds while it runs, and what it was given. */
typedef struct {
    PyObject *html;
    const void *data;
    int kind;
    Py_ssize_t end, limit;
    PyObject *triggers, *verdicts, *granted, *raw, *placeholder, *wants_placeholder;
    PyObject *out;
    Py_ssize_t copied, head_slot, script_slot, gated;
    int needs_client, changed;
} skimmer;

/* What a step answers besides a position: the read is over, left to the definition, or
 * an exception was raised. */
enum { OVER = -1, LEFT = -2, FAILED = -3 };

/* _Page.copy_to */
static int skim_copy_to(skimmer *s, Py_ssize_t position) {
    if (position <= s->copied) {
        return 0;
    }
    PyObject *piece = PyUnicode_Substring(s->html, s->copied, position);
    if (piece == NULL) {
        return -1;
    }
    int status = PyList_Append(s->out, piece);
    Py_DECREF(piece);
    s->copied = position;
    return status;
}

/* _Page.slot: the index in `out` of an empty piece at `position`, or -1. */
static Py_ssize_t skim_slot(skimmer *s, Py_ssize_t position) {
    PyObject *empty = PyUnicode_New(0, 0);
    if (empty == NULL || skim_copy_to(s, position) < 0 || PyList_Append(s->out, empty) < 0) {
        Py_XDECREF(empty);
        return -1;
    }
    Py_DECREF(empty);
    return PyList_GET_SIZE(s->out) - 1;
}

/* _Page.apply of the insertions `edits` (a verdict's, positions from `start`), with
 * " hidden" at `hidden_at` first among those at its place when it is not -1. */
static int skim_apply(skimmer *s, PyObject *edits, Py_ssize_t start, Py_ssize_t hidden_at) {
    Py_ssize_t count = PyTuple_GET_SIZE(edits);
    for (Py_ssize_t n = 0; n <= count; n++) {
        PyObject *edit = n < count ? PyTuple_GET_ITEM(edits, n) : NULL;
        Py_ssize_t position = PY_SSIZE_T_MAX;
        if (edit != NULL) {
            if (!PyTuple_Check(edit) || PyTuple_GET_SIZE(edit) != 2 ||
                !PyUnicode_Check(PyTuple_GET_ITEM(edit, 1))) {
                PyErr_SetString(PyExc_TypeError, "skim(): an edit is not (int, str)");
                return -1;
            }
            position = PyLong_AsSsize_t(PyTuple_GET_ITEM(edit, 0));
            if (position == -1 && PyErr_Occurred()) {
                return -1;
            }
            position += start;
        }
        if (hidden_at >= 0 && hidden_at <= position) {
            static PyObject *hidden = NULL;
            if (hidden == NULL && (hidden = PyUnicode_InternFromString(" hidden")) == NULL) {
                return -1;
            }
            if (skim_copy_to(s, hidden_at) < 0 || PyList_Append(s->out, hidden) < 0) {
                return -1;
            }
            hidden_at = -1;
        }
        if (edit != NULL &&
            (skim_copy_to(s, position) < 0 || PyList_Append(s->out, PyTuple_GET_ITEM(edit, 1)) < 0)) {
            return -1;
        }
    }
    s->changed = 1;
    return 0;
}

/* _Page.element for the start tag [start, stop) of tag number `tag`: where reading goes
 * on, or LEFT / FAILED. */
static ALWAYS_INLINE Py_ssize_t skim_element(skimmer *s, int tag, Py_ssize_t start,
                                             Py_ssize_t stop) {
    const void *data = s->data;
    int kind = s->kind;
    Py_ssize_t end = s->end, body_end = stop;
    if (tag == TAG_SCRIPT) {
        body_end = script_end(data, kind, stop, end);
    } else if (tag == TAG_IFRAME) {
        Py_ssize_t close = raw_end(data, kind, stop, end, &tag_names[TAG_IFRAME]);
        body_end = close < 0 ? end : close;
    }
    if (start >= s->limit) {
        return body_end;
    }
    int held = holds_trigger(s->triggers, start, stop);
    if (held <= 0) {
        return held < 0 ? FAILED : body_end;
    }
    /* What was decided for this tag before (_Page.verdict): never decided, it is left
     * to the definition, which decides it and remembers it for the next page. */
    PyObject *text = PyUnicode_Substring(s->html, start, stop);
    if (text == NULL) {
        return FAILED;
    }
    PyObject *key = PyTuple_Pack(3, text, s->granted, s->raw);
    Py_DECREF(text);
    if (key == NULL) {
        return FAILED;
    }
    PyObject *verdict = PyDict_GetItemWithError(s->verdicts, key);
    Py_DECREF(key);
    if (verdict == NULL) {
        return PyErr_Occurred() ? FAILED : LEFT;
    }
    if (!PyTuple_Check(verdict) || PyTuple_GET_SIZE(verdict) != 4 ||
        !PyTuple_Check(PyTuple_GET_ITEM(verdict, 2))) {
        PyErr_SetString(PyExc_TypeError, "skim(): a verdict is not a 4-tuple");
        return FAILED;
    }
    Py_INCREF(verdict); /* a placeholder's rendering may run other threads */
    Py_ssize_t result = FAILED;
    PyObject *attributes = PyTuple_GET_ITEM(verdict, 0), *match = PyTuple_GET_ITEM(verdict, 1);
    PyObject *edits = PyTuple_GET_ITEM(verdict, 2);
    int authored_inert = PyObject_IsTrue(PyTuple_GET_ITEM(verdict, 3));
    if (authored_inert < 0) {
        goto done;
    }
    s->needs_client |= authored_inert;
    if (match == Py_None) {
        result = body_end;
        goto done;
    }
    if (IS_CONTAINER(tag)) {
        /* Its media inherit its categories: the definition reads it tag by tag. */
        result = LEFT;
        goto done;
    }
    s->gated++;
    s->needs_client = 1;
    if (tag == TAG_IFRAME && body_end < end) {
        PyObject *wanted = PyObject_CallOneArg(s->wants_placeholder, attributes);
        int wants = wanted == NULL ? -1 : PyObject_IsTrue(wanted);
        Py_XDECREF(wanted);
        if (wants < 0) {
            goto done;
        }
        Py_ssize_t closed = wants ? any_tag_end(data, kind, body_end, end, 1) : -1;
        if (closed >= 0) {
            PyObject *around = PyObject_CallFunctionObjArgs(s->placeholder, attributes, match, NULL);
            if (around == NULL) {
                goto done;
            }
            if (!PyTuple_Check(around) || PyTuple_GET_SIZE(around) != 2) {
                PyErr_SetString(PyExc_TypeError, "skim(): a placeholder is not a pair");
                Py_DECREF(around);
                goto done;
            }
            int status = skim_copy_to(s, start) < 0 ||
                                 PyList_Append(s->out, PyTuple_GET_ITEM(around, 0)) < 0 ||
                                 skim_apply(s, edits, start, start + 1 + 6) < 0 ||
                                 skim_copy_to(s, closed) < 0 ||
                                 PyList_Append(s->out, PyTuple_GET_ITEM(around, 1)) < 0
                             ? -1
                             : 0;
            Py_DECREF(around);
            result = status < 0 ? FAILED : closed;
            goto done;
        }
    }
    result = skim_apply(s, edits, start, -1) < 0 ? FAILED : body_end;
done:
    Py_DECREF(verdict);
    return result;
}

/* _Page.landmark at `position` (a "<" outside any tag): the next safe position, or
 * OVER, LEFT, FAILED. */
static ALWAYS_INLINE Py_ssize_t skim_landmark(skimmer *s, Py_ssize_t position) {
    const void *data = s->data;
    int kind = s->kind;
    Py_ssize_t end = s->end;
    if (spelt(data, kind, position + 1, end, "!--", 3)) {
        Py_ssize_t after = comment_end(data, kind, position, end);
        return after < 0 ? OVER : after;
    }
    if (spelt(data, kind, position + 1, end, "/", 1)) {
        /* _END_TAG: only containers close, and an open one never matters here (a
         * gated one is left to the definition). */
        if (name_folded(data, kind, position + 2, end, &tag_names[TAG_VIDEO], 3) >= 0) {
            Py_ssize_t after = attributes_end(
                data, kind, name_end(data, kind, position + 2, end), end);
            if (after >= 0) {
                return after;
            }
        }
    }
    int tag = name_folded(data, kind, position + 1, end, tag_names,
                          (int)(sizeof tag_names / sizeof tag_names[0]));
    Py_ssize_t after = -1;
    if (tag >= 0) {
        after = attributes_end(data, kind, position + 1 + tag_names[tag].length, end);
    }
    if (after < 0) {
        Py_ssize_t other = any_tag_end(data, kind, position, end, 0);
        if (other >= 0) {
            return other;
        }
        /* A bogus comment (<!...>, <?...>, </ ...>) or an unterminated tag. */
        Py_ssize_t closed = closing(data, kind, position, end);
        Py_UCS4 second = position + 1 < end ? at(data, kind, position + 1) : 0;
        Py_UCS4 letter = position + 2 < end ? at(data, kind, position + 2) : 0;
        int bogus = second == '!' || second == '?' || !is_letter(letter);
        return bogus && closed >= 0 ? closed + 1 : OVER;
    }
    if (tag == TAG_HEAD) {
        if (s->head_slot < 0 && (s->head_slot = skim_slot(s, after)) < 0) {
            return FAILED;
        }
        return after;
    }
    if (tag == TAG_NOSCRIPT) {
        return LEFT; /* read as markup, bounded: the definition's full read */
    }
    if (tag == TAG_PLAINTEXT) {
        return OVER;
    }
    if (tag < TAG_LOADING) {
        if (tag == TAG_SCRIPT && s->script_slot < 0 &&
            (s->script_slot = skim_slot(s, position)) < 0) {
            return FAILED;
        }
        return skim_element(s, tag, position, after);
    }
    Py_ssize_t close = raw_end(data, kind, after, end, &tag_names[tag]);
    return close < 0 ? OVER : close;
}

/* _Page.trigger_tags: the starts of the tags holding a trigger before `limit`. */
static ALWAYS_INLINE int skim_trigger_tags(skimmer *s, positions *starts) {
    const void *data = s->data;
    int kind = s->kind;
    Py_ssize_t previous = 0, searched = 0, opening = -1;
    int open = 0; /* whether `opening` is known for the tag around the trigger */
    for (Py_ssize_t n = 0; n < PyList_GET_SIZE(s->triggers); n++) {
        Py_ssize_t trigger = PyLong_AsSsize_t(PyList_GET_ITEM(s->triggers, n));
        if (trigger == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (trigger >= s->limit) {
            break;
        }
        if (trigger < previous) {
            PyErr_SetString(PyExc_ValueError, "skim(): triggers out of order");
            return -1;
        }
        Py_ssize_t closed = rfind_char(data, kind, previous, trigger, '>');
        if (closed != -1) {
            searched = closed + 1;
            open = 0;
        }
        previous = trigger;
        if (!open) {
            opening = opening_in(data, kind, searched, trigger);
            searched = trigger;
            open = opening >= 0;
        }
        if (open && (starts->count == 0 || starts->items[starts->count - 1] != opening)) {
            if (positions_add(starts, opening) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* _Page.in_data: whether `position` (a "<") opens a tag, `safe` being outside any. */
static ALWAYS_INLINE int skim_in_data(skimmer *s, Py_ssize_t safe, Py_ssize_t position) {
    Py_ssize_t closed = rfind_char(s->data, s->kind, safe, position, '>');
    Py_ssize_t from = closed + 1 > safe ? closed + 1 : safe;
    return opening_in(s->data, s->kind, from, position) < 0;
}

/* The quick read over the sorted, distinct `marks`: the next safe position at its end,
 * or OVER, LEFT, FAILED. */
static ALWAYS_INLINE Py_ssize_t skim_marks(skimmer *s, const positions *marks) {
    Py_ssize_t safe = 0;
    for (Py_ssize_t n = 0; n < marks->count; n++) {
        Py_ssize_t position = marks->items[n];
        if (position < safe) {
            continue;
        }
        if (!skim_in_data(s, safe, position)) {
            /* Inside a tag, which ends at its first ">": skip past it. */
            Py_ssize_t closed = closing(s->data, s->kind, position, s->end);
            if (closed < 0) {
                return OVER;
            }
            safe = closed + 1;
            continue;
        }
        safe = skim_landmark(s, position);
        if (safe < 0) {
            return safe;
        }
    }
    return safe;
}

/* The landmarks of the page merged with the starts of the tags holding a trigger. */
static ALWAYS_INLINE int skim_read(int kind, skimmer *s, Py_ssize_t *safe) {
    PyObject *found = PyList_New(0);
    if (found == NULL) {
        return -1;
    }
    s->data = PyUnicode_DATA(s->html);
    s->kind = kind;
    int status = landmarks_of(kind, s->data, s->limit, found);
    if (status != 0) {
        Py_DECREF(found);
        return status < 0 ? -1 : 1;
    }
    positions starts = {NULL, 0, 0}, marks = {NULL, 0, 0};
    int result = -1;
    if (skim_trigger_tags(s, &starts) < 0) {
        goto done;
    }
    Py_ssize_t a = 0, b = 0, count = PyList_GET_SIZE(found);
    while (a < count || b < starts.count) {
        Py_ssize_t landmark = -1;
        if (a < count) {
            landmark = PyLong_AsSsize_t(PyList_GET_ITEM(found, a));
            if (landmark == -1 && PyErr_Occurred()) {
                goto done;
            }
        }
        Py_ssize_t next;
        if (b >= starts.count || (a < count && landmark <= starts.items[b])) {
            next = landmark;
            if (b < starts.count && landmark == starts.items[b]) {
                b++;
            }
            a++;
        } else {
            next = starts.items[b++];
        }
        if (positions_add(&marks, next) < 0) {
            goto done;
        }
    }
    Py_ssize_t read = skim_marks(s, &marks);
    if (read == FAILED) {
        goto done;
    }
    *safe = read;
    result = read == LEFT ? 1 : 0;
done:
    Py_DECREF(found);
    PyMem_Free(starts.items);
    PyMem_Free(marks.items);
    return result;
}

PyDoc_STRVAR(skim_doc,
             "skim(html, limit, triggers, verdicts, granted, raw, placeholder,\n"
             "     wants_placeholder, /)\n--\n\n"
             "``_Page.skim`` of gating.py over ``html`` read up to ``limit``, for a page\n"
             "whose every tag to gate was decided before (found in ``verdicts`` under\n"
             "``(tag, granted, raw)``): ``(out, copied, head_slot, script_slot,\n"
             "needs_client, changed, gated, safe)``, the page's state after the read\n"
             "(``safe`` is ``-1`` when nothing after it can matter), or ``None`` when the\n"
             "quick read does not hold or the page holds something only the definition\n"
             "reads (a tag never decided, ``<noscript>``, a gated media container).\n"
             "``placeholder(attributes, match)`` and ``wants_placeholder(attributes)`` are\n"
             "called for a gated iframe.");

static PyObject *skim(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 8 || !PyUnicode_Check(args[0]) || !PyList_Check(args[2]) ||
        !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "skim() takes a str, an int, a list, a dict and four objects");
        return NULL;
    }
    PyObject *html = args[0];
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if ((limit == -1 && PyErr_Occurred()) || ready(html) < 0) {
        return NULL;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(html);
    skimmer s = {
        .html = html,
        .end = length,
        .limit = limit < 0 ? 0 : limit > length ? length : limit,
        .triggers = args[2],
        .verdicts = args[3],
        .granted = args[4],
        .raw = args[5],
        .placeholder = args[6],
        .wants_placeholder = args[7],
        .out = PyList_New(0),
        .head_slot = -1,
        .script_slot = -1,
    };
    if (s.out == NULL) {
        return NULL;
    }
    Py_ssize_t safe = 0;
    int status = BY_WIDTH(html, skim_read, &s, &safe);
    if (status != 0) {
        Py_DECREF(s.out);
        if (status < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *result = Py_BuildValue(
        "(NnNNNNnn)", s.out, s.copied,
        s.head_slot < 0 ? Py_NewRef(Py_None) : PyLong_FromSsize_t(s.head_slot),
        s.script_slot < 0 ? Py_NewRef(Py_None) : PyLong_FromSsize_t(s.script_slot),
        PyBool_FromLong(s.needs_client), PyBool_FromLong(s.changed), s.gated,
        safe < 0 ? (Py_ssize_t)-1 : safe);
    return result;
}

/* ---- digest(): XXH64 of a page, for the page cache's filter of pages seen once ---- */

#include <stdint.h>
#include <string.h>

#define XXH_PRIME1 0x9E3779B185EBCA87ULL
#define XXH_PRIME2 0xC2B2AE3D27D4EB4FULL
#define XXH_PRIME3 0x165667B19E3779F9ULL
#define XXH_PRIME4 0x85EBCA77C2B2AE63ULL
#define XXH_PRIME5 0x27D4EB2F165667C5ULL

static ALWAYS_INLINE uint64_t xxh_rotl(uint64_t value, int bits) {
    return (value << bits) | (value >> (64 - bits));
}

/* Little-endian reads, as the reference defines them. */
static ALWAYS_INLINE uint64_t xxh_read64(const unsigned char *p) {
    uint64_t value = 0;
    for (int k = 7; k >= 0; k--) {
        value = (value << 8) | p[k];
    }
    return value;
}

static ALWAYS_INLINE uint32_t xxh_read32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static ALWAYS_INLINE uint64_t xxh_round(uint64_t accumulator, uint64_t input) {
    accumulator += input * XXH_PRIME2;
    return xxh_rotl(accumulator, 31) * XXH_PRIME1;
}

static ALWAYS_INLINE uint64_t xxh_merge(uint64_t accumulator, uint64_t lane) {
    accumulator ^= xxh_round(0, lane);
    return accumulator * XXH_PRIME1 + XXH_PRIME4;
}

/* XXH64 (seed 0) of `length` bytes at `p`: the reference algorithm. */
static uint64_t xxh64(const unsigned char *p, size_t length) {
    const unsigned char *end = p + length;
    uint64_t hash;
    if (length >= 32) {
        uint64_t v1 = XXH_PRIME1 + XXH_PRIME2, v2 = XXH_PRIME2, v3 = 0, v4 = 0 - XXH_PRIME1;
        const unsigned char *limit = end - 32;
        do {
            v1 = xxh_round(v1, xxh_read64(p));
            v2 = xxh_round(v2, xxh_read64(p + 8));
            v3 = xxh_round(v3, xxh_read64(p + 16));
            v4 = xxh_round(v4, xxh_read64(p + 24));
            p += 32;
        } while (p <= limit);
        hash = xxh_rotl(v1, 1) + xxh_rotl(v2, 7) + xxh_rotl(v3, 12) + xxh_rotl(v4, 18);
        hash = xxh_merge(hash, v1);
        hash = xxh_merge(hash, v2);
        hash = xxh_merge(hash, v3);
        hash = xxh_merge(hash, v4);
    } else {
        hash = XXH_PRIME5;
    }
    hash += (uint64_t)length;
    for (; p + 8 <= end; p += 8) {
        hash ^= xxh_round(0, xxh_read64(p));
        hash = xxh_rotl(hash, 27) * XXH_PRIME1 + XXH_PRIME4;
    }
    if (p + 4 <= end) {
        hash ^= (uint64_t)xxh_read32(p) * XXH_PRIME1;
        hash = xxh_rotl(hash, 23) * XXH_PRIME2 + XXH_PRIME3;
        p += 4;
    }
    for (; p < end; p++) {
        hash ^= (uint64_t)*p * XXH_PRIME5;
        hash = xxh_rotl(hash, 11) * XXH_PRIME1;
    }
    hash ^= hash >> 33;
    hash *= XXH_PRIME2;
    hash ^= hash >> 29;
    hash *= XXH_PRIME3;
    hash ^= hash >> 32;
    return hash;
}

PyDoc_STRVAR(digest_doc,
             "digest(data, /)\n--\n\n"
             "XXH64 (seed 0) of ``data`` (bytes): a 64-bit digest three to four times as\n"
             "fast as ``hash()`` of the same bytes, for telling whether a page was seen\n"
             "before (not a cryptographic hash).");

static PyObject *digest(PyObject *module, PyObject *data) {
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "digest() takes bytes");
        return NULL;
    }
    uint64_t value = xxh64((const unsigned char *)PyBytes_AS_STRING(data),
                           (size_t)PyBytes_GET_SIZE(data));
    return PyLong_FromUnsignedLongLong((unsigned long long)value);
}

/* ---- join_raw(): a UTF-8 page read byte for byte, written back as bytes ---- */

/* The size of `piece` as join_raw() copies it, with its buffer in `view` for a
 * memoryview (released by the caller); -1 with an exception for anything else. */
static Py_ssize_t raw_size(PyObject *piece, Py_buffer *view) {
    if (PyUnicode_CheckExact(piece)) {
        if (PyUnicode_KIND(piece) != PyUnicode_1BYTE_KIND) {
            /* A character past U+00FF: the error str.encode("latin-1") raises. */
            PyObject *encoded = PyUnicode_AsLatin1String(piece);
            if (encoded != NULL) {
                Py_DECREF(encoded);
                PyErr_SetString(PyExc_ValueError, "join_raw() got a str not in canonical form");
            }
            return -1;
        }
        return PyUnicode_GET_LENGTH(piece);
    }
    if (PyBytes_CheckExact(piece)) {
        return PyBytes_GET_SIZE(piece);
    }
    if (PyMemoryView_Check(piece)) {
        /* Exact type: taking its buffer runs no Python code. */
        if (PyObject_GetBuffer(piece, view, PyBUF_SIMPLE) < 0) {
            return -1;
        }
        return view->len;
    }
    PyErr_Format(PyExc_TypeError, "join_raw() takes str, bytes and memoryview pieces, not %.100s",
                 Py_TYPE(piece)->tp_name);
    return -1;
}

PyDoc_STRVAR(join_raw_doc,
             "join_raw(pieces, /)\n--\n\n"
             "``pieces`` (a list of str, bytes and memoryview) joined into bytes, each str\n"
             "taken one byte per character as ``str.encode(\"latin-1\")`` does: the pieces of\n"
             "a UTF-8 page read byte for byte, and of the bytes around them, copied once.");

static PyObject *join_raw(PyObject *module, PyObject *pieces) {
    (void)module;
    if (!PyList_CheckExact(pieces)) {
        PyErr_SetString(PyExc_TypeError, "join_raw() takes a list");
        return NULL;
    }
    /* Every piece is of an exact built-in type, checked before anything is copied:
     * no Python code runs in between, so the list cannot change. */
    Py_ssize_t count = PyList_GET_SIZE(pieces), total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_buffer view = {0};
        Py_ssize_t size = raw_size(PyList_GET_ITEM(pieces, i), &view);
        if (view.obj != NULL) {
            PyBuffer_Release(&view);
        }
        if (size < 0) {
            return NULL;
        }
        if (size > PY_SSIZE_T_MAX - total) {
            PyErr_SetString(PyExc_OverflowError, "join_raw() result is too long");
            return NULL;
        }
        total += size;
    }
    PyObject *joined = PyBytes_FromStringAndSize(NULL, total);
    if (joined == NULL) {
        return NULL;
    }
    char *into = PyBytes_AS_STRING(joined);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *piece = PyList_GET_ITEM(pieces, i);
        if (PyUnicode_CheckExact(piece)) {
            Py_ssize_t size = PyUnicode_GET_LENGTH(piece);
            memcpy(into, PyUnicode_1BYTE_DATA(piece), (size_t)size);
            into += size;
        } else if (PyBytes_CheckExact(piece)) {
            Py_ssize_t size = PyBytes_GET_SIZE(piece);
            memcpy(into, PyBytes_AS_STRING(piece), (size_t)size);
            into += size;
        } else {
            Py_buffer view;
            if (PyObject_GetBuffer(piece, &view, PyBUF_SIMPLE) < 0) {
                Py_DECREF(joined);
                return NULL;
            }
            memcpy(into, view.buf, (size_t)view.len);
            into += view.len;
            PyBuffer_Release(&view);
        }
    }
    return joined;
}

/* ---- affixes(): how much two pages share at their start and at their end ---- */

/* The longest common start of `old` and `new` (`*prefix`), then, when `with_suffix`, the
 * longest common end of what the start left (`*suffix`, else 0): blocks compared by memcmp
 * (vectorized), then what is left of the block that differs byte by byte. */
static void shared_ends(const unsigned char *old, Py_ssize_t old_size, const unsigned char *new,
                        Py_ssize_t new_size, int with_suffix, Py_ssize_t *prefix,
                        Py_ssize_t *suffix) {
    /* Large blocks first (a page shares long runs with its base), then small ones. */
    enum { LARGE = 4096, SMALL = 64 };
    Py_ssize_t shorter = old_size < new_size ? old_size : new_size, start = 0;
    while (start + LARGE <= shorter && memcmp(old + start, new + start, LARGE) == 0) {
        start += LARGE;
    }
    while (start + SMALL <= shorter && memcmp(old + start, new + start, SMALL) == 0) {
        start += SMALL;
    }
    while (start < shorter && old[start] == new[start]) {
        start++;
    }
    Py_ssize_t room = with_suffix ? shorter - start : 0, end = 0;
    const unsigned char *old_end = old + old_size, *new_end = new + new_size;
    while (end + LARGE <= room && memcmp(old_end - end - LARGE, new_end - end - LARGE, LARGE) == 0) {
        end += LARGE;
    }
    while (end + SMALL <= room && memcmp(old_end - end - SMALL, new_end - end - SMALL, SMALL) == 0) {
        end += SMALL;
    }
    while (end < room && old_end[-end - 1] == new_end[-end - 1]) {
        end++;
    }
    *prefix = start;
    *suffix = end;
}

PyDoc_STRVAR(affixes_doc,
             "affixes(old, new, old_start=0, new_start=0, suffix=True, /)\n--\n\n"
             "``(prefix, suffix)``: the lengths of the longest common start and end of\n"
             "``old[old_start:]`` and ``new[new_start:]`` (bytes), the end looked for only in\n"
             "what the start left (``prefix + suffix`` is at most the shorter length);\n"
             "the end is not looked for (``0``) when ``suffix`` is false.");

static PyObject *affixes(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs < 2 || nargs > 5 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "affixes() takes two bytes, two optional starts and a flag");
        return NULL;
    }
    int with_suffix = 1;
    if (nargs == 5) {
        with_suffix = PyObject_IsTrue(args[4]);
        if (with_suffix < 0) {
            return NULL;
        }
    }
    Py_ssize_t starts[2] = {0, 0};
    for (Py_ssize_t i = 2; i < nargs && i < 4; i++) {
        if (!PyLong_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "affixes() starts must be int");
            return NULL;
        }
        starts[i - 2] = PyLong_AsSsize_t(args[i]);
        if (starts[i - 2] == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    Py_ssize_t old_size = PyBytes_GET_SIZE(args[0]), new_size = PyBytes_GET_SIZE(args[1]);
    if (starts[0] < 0 || starts[0] > old_size || starts[1] < 0 || starts[1] > new_size) {
        PyErr_SetString(PyExc_ValueError, "affixes() start out of range");
        return NULL;
    }
    const unsigned char *old = (const unsigned char *)PyBytes_AS_STRING(args[0]) + starts[0];
    const unsigned char *new = (const unsigned char *)PyBytes_AS_STRING(args[1]) + starts[1];
    old_size -= starts[0];
    new_size -= starts[1];
    Py_ssize_t prefix = 0, suffix = 0;
    shared_ends(old, old_size, new, new_size, with_suffix, &prefix, &suffix);
    return Py_BuildValue("(nn)", prefix, suffix);
}

/* ---- splice_plan(): where a page differs from its base, and whether it may be spliced ---- */

enum { PLAN_UNLIKE = 0, PLAN_UNSAFE = 1 };

/* bytes.find(needle, from, to) on `data` of `size` bytes: the first index or -1. */
static Py_ssize_t plan_find(const unsigned char *data, Py_ssize_t size, Py_ssize_t from,
                            Py_ssize_t to, const unsigned char *needle, Py_ssize_t length) {
    if (to > size) {
        to = size;
    }
    if (from < 0 || from > size) {
        return -1;
    }
    while (to - from >= length) {
        const unsigned char *hit = memchr(data + from, needle[0], (size_t)(to - from - length + 1));
        if (hit == NULL) {
            return -1;
        }
        Py_ssize_t at = hit - data;
        if (memcmp(hit + 1, needle + 1, (size_t)(length - 1)) == 0) {
            return at;
        }
        from = at + 1;
    }
    return -1;
}

/* An int of a list of them (the spans' bounds), or -1 with an exception. */
static Py_ssize_t plan_bound(PyObject *list, Py_ssize_t index) {
    PyObject *value = PyList_GET_ITEM(list, index);
    if (!PyLong_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "splice_plan() span bounds must be int");
        return -1;
    }
    Py_ssize_t bound = PyLong_AsSsize_t(value);
    if (bound < 0 && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "splice_plan() span bounds must not be negative");
    }
    return PyErr_Occurred() ? -1 : bound;
}

/* Whether none of `forbidden`'s bytes is in data[from:to) (clamped to `size`). */
static int plan_clean(const unsigned char *data, Py_ssize_t size, Py_ssize_t from,
                      Py_ssize_t to, PyObject *forbidden) {
    if (from < 0) {
        from = 0;
    }
    if (to > size) {
        to = size;
    }
    if (from >= to) {
        return 1;
    }
    const unsigned char *chars = (const unsigned char *)PyBytes_AS_STRING(forbidden);
    for (Py_ssize_t k = 0; k < PyBytes_GET_SIZE(forbidden); k++) {
        if (memchr(data + from, chars[k], (size_t)(to - from)) != NULL) {
            return 0;
        }
    }
    return 1;
}

/* The span of `starts`/`ends` a change of old[old_start:old_end] lies in, when changing it to
 * new[new_start:new_end] keeps the page read the same (SpliceStore's definition, _plan_py):
 * its index, -1 when it may not be spliced, -2 with an exception. */
static Py_ssize_t plan_span(const unsigned char *old, Py_ssize_t old_size,
                            const unsigned char *new, Py_ssize_t new_size, PyObject *starts,
                            PyObject *ends, PyObject *forbidden, Py_ssize_t old_start,
                            Py_ssize_t old_end, Py_ssize_t new_start, Py_ssize_t new_end) {
    Py_ssize_t low = 0, high = PyList_GET_SIZE(starts);
    while (low < high) { /* bisect_right(starts, old_start) */
        Py_ssize_t middle = low + (high - low) / 2, start = plan_bound(starts, middle);
        if (start < 0) {
            return -2;
        }
        if (old_start < start) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Py_ssize_t index = low - 1;
    if (index < 0) {
        return -1;
    }
    Py_ssize_t start = plan_bound(starts, index), end = plan_bound(ends, index);
    if (start < 0 || end < 0) {
        return -2;
    }
    if (end < old_end) {
        return -1;
    }
    PyObject *chars = PyList_GET_ITEM(forbidden, index);
    if (!PyBytes_CheckExact(chars)) {
        PyErr_SetString(PyExc_TypeError, "splice_plan() forbidden characters must be bytes");
        return -2;
    }
    Py_ssize_t before = old_start - 1 > start ? old_start - 1 : start;
    Py_ssize_t after_end = new_end + (end - old_end < 1 ? end - old_end : 1);
    if (!plan_clean(old, old_size, before, old_end + 1 < end ? old_end + 1 : end, chars) ||
        !plan_clean(new, new_size, new_start - (old_start - before), after_end, chars)) {
        return -1;
    }
    return index;
}

PyDoc_STRVAR(splice_plan_doc,
             "splice_plan(old, new, max_change, max_changes, starts, ends, forbidden, /)\n--\n\n"
             "Where the page ``new`` differs from its base ``old``: a flat tuple of\n"
             "``(old start, old end, new start, new end, span)`` per change (empty when the\n"
             "two are the same), ``0`` when they are not alike, ``1`` when a change may not be\n"
             "spliced. ``starts``, ``ends`` and ``forbidden`` are the base's verbatim spans\n"
             "(``None``: not read yet, no change checked, span ``-1``). The definition is\n"
             "``mypharm_consent.splice._plan_py``.");

static PyObject *splice_plan(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 7 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) ||
        !PyLong_Check(args[2]) || !PyLong_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "splice_plan() takes two bytes, two ints and the spans' three lists");
        return NULL;
    }
    PyObject *starts = args[4], *ends = args[5], *forbidden = args[6];
    int checked = starts != Py_None;
    if (checked ? !PyList_CheckExact(starts) || !PyList_CheckExact(ends) ||
                      !PyList_CheckExact(forbidden) ||
                      PyList_GET_SIZE(ends) != PyList_GET_SIZE(starts) ||
                      PyList_GET_SIZE(forbidden) != PyList_GET_SIZE(starts)
                : ends != Py_None || forbidden != Py_None) {
        PyErr_SetString(PyExc_TypeError,
                        "splice_plan() spans are three lists of the same length, or None");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]), rounds = PyLong_AsSsize_t(args[3]);
    if ((limit == -1 || rounds == -1) && PyErr_Occurred()) {
        return NULL;
    }
    if (limit < 0 || rounds < 1) {
        PyErr_SetString(PyExc_ValueError, "splice_plan() limits out of range");
        return NULL;
    }
    const unsigned char *old = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const unsigned char *new = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t old_size = PyBytes_GET_SIZE(args[0]), new_size = PyBytes_GET_SIZE(args[1]);
    Py_ssize_t prefix, suffix;
    shared_ends(old, old_size, new, new_size, 1, &prefix, &suffix);
    PyObject *plan = PyList_New(0);
    if (plan == NULL) {
        return NULL;
    }
    if (prefix == old_size && prefix == new_size) {
        goto planned;
    }
    Py_ssize_t shared = suffix, i = prefix, j = prefix;
    for (Py_ssize_t round = 0; round < rounds; round++) {
        Py_ssize_t old_end = old_size - suffix, new_end = new_size - suffix;
        Py_ssize_t change[4];
        int last = 0;
        Py_ssize_t search_end = i + limit + 1 < old_end ? i + limit + 1 : old_end;
        Py_ssize_t tag = plan_find(old, old_size, i + 1, search_end, (const unsigned char *)"<", 1);
        if (tag == -1) {
            if (old_end - i > limit || new_end - j > limit) {
                break;
            }
            change[0] = i, change[1] = old_end, change[2] = j, change[3] = new_end;
            last = 1;
        } else {
            Py_ssize_t closed =
                plan_find(old, old_size, tag, tag + 16, (const unsigned char *)">", 1);
            Py_ssize_t anchor_end = closed == -1 ? tag + 16 : closed + 1;
            if (anchor_end > old_size) {
                anchor_end = old_size;
            }
            Py_ssize_t length = anchor_end - tag;
            Py_ssize_t found = plan_find(new, new_size, j, j + limit + length, old + tag, length);
            if (found == -1) {
                break;
            }
            Py_ssize_t ignored, tail, step;
            shared_ends(old + i, tag - i, new + j, found - j, 1, &ignored, &tail);
            change[0] = i, change[1] = tag - tail, change[2] = j, change[3] = found - tail;
            shared_ends(old + tag, old_size - tag, new + found, new_size - found, 0, &step,
                        &ignored);
            i = tag + step;
            j = found + step;
            suffix = shared;
            if (suffix > old_size - i) {
                suffix = old_size - i;
            }
            if (suffix > new_size - j) {
                suffix = new_size - j;
            }
            last = i == old_size && j == new_size;
        }
        Py_ssize_t span = -1;
        if (checked) {
            span = plan_span(old, old_size, new, new_size, starts, ends, forbidden, change[0],
                             change[1], change[2], change[3]);
            if (span == -2) {
                Py_DECREF(plan);
                return NULL;
            }
            if (span == -1) {
                Py_DECREF(plan);
                return PyLong_FromLong(PLAN_UNSAFE);
            }
        }
        for (int k = 0; k < 5; k++) {
            PyObject *number = PyLong_FromSsize_t(k < 4 ? change[k] : span);
            if (number == NULL || PyList_Append(plan, number) < 0) {
                Py_XDECREF(number);
                Py_DECREF(plan);
                return NULL;
            }
            Py_DECREF(number);
        }
        if (last) {
            goto planned;
        }
    }
    Py_DECREF(plan);
    return PyLong_FromLong(PLAN_UNLIKE);
planned:;
    PyObject *answer = PyList_AsTuple(plan);
    Py_DECREF(plan);
    return answer;
}

/* ---- splice_join(): a spliced page written out in one copy ---- */

/* Copies data[0:size) to the page at `*written`, with `markup` put in where the page's
 * offset `at` falls in it (`*placed` set once it is). */
static void sj_write(char *into, Py_ssize_t *written, const char *data, Py_ssize_t size,
                     Py_ssize_t at, const char *markup, Py_ssize_t markup_size, int *placed) {
    if (!*placed && at >= *written && at <= *written + size) {
        Py_ssize_t before = at - *written;
        memcpy(into + *written, data, (size_t)before);
        memcpy(into + *written + before, markup, (size_t)markup_size);
        memcpy(into + *written + before + markup_size, data + before, (size_t)(size - before));
        *written += size + markup_size;
        *placed = 1;
        return;
    }
    memcpy(into + *written, data, (size_t)size);
    *written += size;
}

PyDoc_STRVAR(splice_join_doc,
             "splice_join(gated, body, cuts, at, markup, /)\n--\n\n"
             "The gated page ``gated`` with each ``(start, end, new start, new end)`` of the\n"
             "flat tuple ``cuts`` (in order) replaced by ``body[new start:new end]``, and\n"
             "``markup`` (bytes, or ``None`` for none) put in ``at`` bytes from the start of\n"
             "the result. The definition is ``mypharm_consent.splice._splice_join_py``.");

static PyObject *splice_join(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 5 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) ||
        !PyTuple_CheckExact(args[2]) || !PyLong_Check(args[3]) ||
        (args[4] != Py_None && !PyBytes_Check(args[4]))) {
        PyErr_SetString(PyExc_TypeError,
                        "splice_join() takes two bytes, a tuple, an int and bytes or None");
        return NULL;
    }
    const char *gated = PyBytes_AS_STRING(args[0]), *body = PyBytes_AS_STRING(args[1]);
    Py_ssize_t gated_size = PyBytes_GET_SIZE(args[0]), body_size = PyBytes_GET_SIZE(args[1]);
    PyObject *cuts = args[2];
    Py_ssize_t count = PyTuple_GET_SIZE(cuts);
    Py_ssize_t at = PyLong_AsSsize_t(args[3]);
    if (at == -1 && PyErr_Occurred()) {
        return NULL;
    }
    const char *markup = args[4] == Py_None ? "" : PyBytes_AS_STRING(args[4]);
    Py_ssize_t markup_size = args[4] == Py_None ? 0 : PyBytes_GET_SIZE(args[4]);
    if (count % 4 != 0) {
        PyErr_SetString(PyExc_ValueError, "splice_join() cuts come four by four");
        return NULL;
    }
    /* Checked first, in full: every cut in order and in range. */
    Py_ssize_t total = gated_size, copied = 0;
    for (Py_ssize_t k = 0; k < count; k += 4) {
        Py_ssize_t cut[4];
        for (int m = 0; m < 4; m++) {
            PyObject *value = PyTuple_GET_ITEM(cuts, k + m);
            if (!PyLong_CheckExact(value)) {
                PyErr_SetString(PyExc_TypeError, "splice_join() cuts must be int");
                return NULL;
            }
            cut[m] = PyLong_AsSsize_t(value);
            if (cut[m] == -1 && PyErr_Occurred()) {
                return NULL;
            }
        }
        if (cut[0] < copied || cut[1] < cut[0] || cut[1] > gated_size || cut[2] < 0 ||
            cut[3] < cut[2] || cut[3] > body_size) {
            PyErr_SetString(PyExc_ValueError, "splice_join() cuts out of order or range");
            return NULL;
        }
        total += (cut[3] - cut[2]) - (cut[1] - cut[0]);
        copied = cut[1];
    }
    if (args[4] != Py_None && (at < 0 || at > total)) {
        PyErr_Format(PyExc_ValueError, "position %zd is past the page's %zd bytes", at, total);
        return NULL;
    }
    PyObject *page = PyBytes_FromStringAndSize(NULL, total + markup_size);
    if (page == NULL) {
        return NULL;
    }
    char *into = PyBytes_AS_STRING(page);
    Py_ssize_t written = 0;
    int placed = args[4] == Py_None;
    copied = 0;
    for (Py_ssize_t k = 0; k < count; k += 4) {
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(cuts, k));
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(cuts, k + 1));
        Py_ssize_t new_start = PyLong_AsSsize_t(PyTuple_GET_ITEM(cuts, k + 2));
        Py_ssize_t new_end = PyLong_AsSsize_t(PyTuple_GET_ITEM(cuts, k + 3));
        sj_write(into, &written, gated + copied, start - copied, at, markup, markup_size, &placed);
        sj_write(into, &written, body + new_start, new_end - new_start, at, markup, markup_size,
                 &placed);
        copied = end;
    }
    sj_write(into, &written, gated + copied, gated_size - copied, at, markup, markup_size, &placed);
    return page;
}

/* ---- verbatim_spans(): the parts of a page gating copies as they are ---- */

enum { SPAN_TEXT = 0, SPAN_COMMENT = 1, SPAN_SCRIPT = 2, SPAN_RAW = 3, SPAN_DOUBLE = 4, SPAN_SINGLE = 5 };

typedef struct {
    PyObject *list;
    PyObject *kinds; /* a tuple: what stands for each kind in the answer */
} VsSpans;

static int vs_add_span(VsSpans *spans, Py_ssize_t start, Py_ssize_t end, int kind) {
    PyObject *item = PyTuple_New(3);
    if (item == NULL) {
        return -1;
    }
    PyObject *first = PyLong_FromSsize_t(start), *last = PyLong_FromSsize_t(end);
    if (first == NULL || last == NULL) {
        Py_XDECREF(first);
        Py_XDECREF(last);
        Py_DECREF(item);
        return -1;
    }
    PyObject *named = PyTuple_GET_ITEM(spans->kinds, kind);
    Py_INCREF(named);
    PyTuple_SET_ITEM(item, 0, first);
    PyTuple_SET_ITEM(item, 1, last);
    PyTuple_SET_ITEM(item, 2, named);
    int failed = PyList_Append(spans->list, item);
    Py_DECREF(item);
    return failed;
}

/* Whether the ASCII word `word` (lower case) is at `at` in any case, wholly before `n`. */
static int vs_word_at(const Py_UCS1 *s, Py_ssize_t n, Py_ssize_t at, const char *word) {
    for (Py_ssize_t i = 0; word[i]; i++) {
        if (at + i >= n || ascii_lower(s[at + i]) != (Py_UCS1)word[i]) {
            return 0;
        }
    }
    return 1;
}

/* [\t\n\f\r />] at `at` (the lookahead after a tag name); false at the end. */
static int vs_delimits(const Py_UCS1 *s, Py_ssize_t n, Py_ssize_t at) {
    return at < n && (is_space(s[at]) || s[at] == '/' || s[at] == '>');
}

/* The end of `<!--(?:-?>|(?s:.*?)--!?>)` at `at`, or -1. */
static Py_ssize_t vs_comment_end(const Py_UCS1 *s, Py_ssize_t n, Py_ssize_t at) {
    Py_ssize_t p = at + 4;
    if (p < n && s[p] == '>') {
        return p + 1;
    }
    if (p + 1 < n && s[p] == '-' && s[p + 1] == '>') {
        return p + 2;
    }
    for (Py_ssize_t q = p; q + 2 < n; q++) {
        if (s[q] != '-' || s[q + 1] != '-') {
            continue;
        }
        if (s[q + 2] == '!' && q + 3 < n && s[q + 3] == '>') {
            return q + 4;
        }
        if (s[q + 2] == '>') {
            return q + 3;
        }
    }
    return -1;
}

/* One attribute at `p` (not a space, "/" or ">"), read as _ATTR reads it before `limit`:
 * where it ends; where its name ends in `name_stop`; its opening and closing quotes in
 * `quote` and `closing` when its value is quoted (else `quote` is -1). */
static Py_ssize_t vs_attribute(const Py_UCS1 *s, Py_ssize_t limit, Py_ssize_t p,
                               Py_ssize_t *name_stop, Py_ssize_t *quote, Py_ssize_t *closing) {
    p++;
    while (p < limit && !is_space(s[p]) && s[p] != '/' && s[p] != '=' && s[p] != '>') {
        p++;
    }
    *name_stop = p;
    *quote = -1;
    *closing = -1;
    Py_ssize_t q = p;
    while (q < limit && is_space(s[q])) {
        q++;
    }
    if (q >= limit || s[q] != '=') {
        return p;
    }
    q++;
    while (q < limit && is_space(s[q])) {
        q++;
    }
    if (q < limit && (s[q] == '"' || s[q] == '\'')) {
        const Py_UCS1 *found = memchr(s + q + 1, s[q], (size_t)(limit - q - 1));
        if (found != NULL) {
            *quote = q;
            *closing = found - s;
            return *closing + 1;
        }
    }
    while (q < limit && !is_space(s[q]) && s[q] != '>') {
        q++;
    }
    return q;
}

/* The end of `</?[A-Za-z][^\s/>]*+` + the attributes + `>` at `at` (a "<"), or -1; the
 * end of the name in `name_end`. The attributes by the standard's states, as _ATTRS. */
static Py_ssize_t vs_tag_end(const Py_UCS1 *s, Py_ssize_t n, Py_ssize_t at, Py_ssize_t *name_end) {
    Py_ssize_t p = at + 1;
    if (p < n && s[p] == '/') {
        p++;
    }
    if (p >= n || !is_letter(s[p])) {
        return -1;
    }
    while (p < n && !is_space(s[p]) && s[p] != '/' && s[p] != '>') {
        p++;
    }
    *name_end = p;
    while (p < n) {
        if (s[p] == '>') {
            return p + 1;
        }
        if (is_space(s[p]) || s[p] == '/') {
            p++;
            continue;
        }
        Py_ssize_t name_stop, quote, closing;
        p = vs_attribute(s, n, p, &name_stop, &quote, &closing);
    }
    return -1;
}

static const char *const vs_start_names[] = {
    "img",   "video",   "audio",    "source",   "track",   "link",   "script",
    "iframe", "style",  "textarea", "title",    "xmp",     "noembed", "noframes",
    "picture", "head",  "noscript", "plaintext", NULL};
static const char *const vs_unread_attributes[] = {"nonce", "integrity", "id", "class",
                                                "title", "alt",       NULL};

/* Whether s[start:end], lower-cased (ASCII letters only), is one of `words`. */
static int vs_one_of(const Py_UCS1 *s, Py_ssize_t start, Py_ssize_t end, const char *const *words) {
    for (Py_ssize_t w = 0; words[w]; w++) {
        const char *word = words[w];
        Py_ssize_t size = (Py_ssize_t)strlen(word);
        if (size == end - start && vs_word_at(s, end, start, word)) {
            return 1;
        }
    }
    return 0;
}

/* The quoted values of the attributes in s[start:end) (``_ATTR.finditer`` there), spans of
 * those gating never reads (all of them when `relevant` is false). */
static int vs_attribute_spans(VsSpans *spans, const Py_UCS1 *s, Py_ssize_t start, Py_ssize_t end,
                              int relevant) {
    Py_ssize_t p = start;
    while (p < end) {
        if (is_space(s[p]) || s[p] == '/' || s[p] == '>') {
            p++;
            continue;
        }
        Py_ssize_t name = p, name_stop, quote, closing;
        p = vs_attribute(s, end, p, &name_stop, &quote, &closing);
        if (quote >= 0 && closing > quote + 1 &&
            (!relevant || vs_one_of(s, name, name_stop, vs_unread_attributes)) &&
            vs_add_span(spans, quote + 1, closing, s[quote] == '"' ? SPAN_DOUBLE : SPAN_SINGLE) <
                0) {
            return -1;
        }
    }
    return 0;
}

/* Where the `</script` that ends a script body starts (or n): _script_end. */
static Py_ssize_t vs_script_body_end(const Py_UCS1 *s, Py_ssize_t n, Py_ssize_t at) {
    Py_ssize_t p = at;
    int state = 0; /* 0: script data, 1: escaped, 2: double escaped */
    while (p < n) {
        Py_UCS1 c = s[p];
        if (c == '-' && state != 0 && p + 2 < n && s[p + 1] == '-' && s[p + 2] == '>') {
            state = 0;
            p += 3;
            continue;
        }
        if (c == '<') {
            if (state == 0 && p + 3 < n && s[p + 1] == '!' && s[p + 2] == '-' && s[p + 3] == '-') {
                state = 1;
                p += 2; /* the dashes of "<!--" count for "-->" */
                continue;
            }
            if (p + 1 < n && s[p + 1] == '/' && vs_word_at(s, n, p + 2, "script") &&
                vs_delimits(s, n, p + 8)) {
                if (state != 2) {
                    return p;
                }
                state = 1;
                p += 9;
                continue;
            }
            if (state == 1 && vs_word_at(s, n, p + 1, "script") && vs_delimits(s, n, p + 7)) {
                state = 2;
                p += 8;
                continue;
            }
        }
        p++;
    }
    return n;
}

/* Where `</name` (any case) then a delimiter starts from `at`, or -1. */
static Py_ssize_t vs_raw_end(const Py_UCS1 *s, Py_ssize_t n, Py_ssize_t at, Py_ssize_t name,
                          Py_ssize_t name_stop) {
    Py_ssize_t size = name_stop - name;
    for (Py_ssize_t p = at; p + 1 < n; p++) {
        const Py_UCS1 *found = memchr(s + p, '<', (size_t)(n - p));
        if (found == NULL) {
            return -1;
        }
        p = found - s;
        if (p + 1 >= n || s[p + 1] != '/' || p + 2 + size > n) {
            continue;
        }
        Py_ssize_t i = 0;
        while (i < size && ascii_lower(s[p + 2 + i]) == ascii_lower(s[name + i])) {
            i++;
        }
        if (i == size && vs_delimits(s, n, p + 2 + size)) {
            return p;
        }
    }
    return -1;
}

PyDoc_STRVAR(verbatim_spans_doc,
             "verbatim_spans(html, floor, kinds, /)\n--\n\n"
             "``gating._verbatim_spans_py(html)``, for a str of one byte per character\n"
             "(``None`` for a wider one), each span's kind taken from ``kinds`` (text,\n"
             "comment, script, raw text, double-quoted value, single-quoted value).\n"
             "``floor`` is where text may start (after the document's start).");

static PyObject *verbatim_spans(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyLong_Check(args[1]) ||
        !PyTuple_CheckExact(args[2]) || PyTuple_GET_SIZE(args[2]) != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "verbatim_spans() takes a str, an int and a tuple of six kinds");
        return NULL;
    }
    PyObject *html = args[0];
    Py_ssize_t floor = PyLong_AsSsize_t(args[1]);
    if (floor == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (ready(html) < 0) {
        return NULL;
    }
    if (PyUnicode_KIND(html) != PyUnicode_1BYTE_KIND) {
        Py_RETURN_NONE;
    }
    const Py_UCS1 *s = PyUnicode_1BYTE_DATA(html);
    Py_ssize_t n = PyUnicode_GET_LENGTH(html);
    VsSpans spans = {PyList_New(0), args[2]};
    if (spans.list == NULL) {
        return NULL;
    }
    Py_ssize_t position = 0, guard = 0;
    while (position < n) {
        const Py_UCS1 *found = memchr(s + position, '<', (size_t)(n - position));
        Py_ssize_t opening = found == NULL ? n : found - s;
        Py_ssize_t text = position > floor ? position : floor;
        text = text > guard ? text : guard;
        if (opening > text && vs_add_span(&spans, text, opening, SPAN_TEXT) < 0) {
            goto failed;
        }
        if (opening >= n) {
            break;
        }
        int following = opening + 1 < n ? s[opening + 1] : -1;
        if (following == '!' && opening + 3 < n && s[opening + 2] == '-' && s[opening + 3] == '-') {
            Py_ssize_t closed = vs_comment_end(s, n, opening);
            if (closed < 0) {
                break;
            }
            Py_ssize_t inner = closed - (s[closed - 2] == '!' ? 4 : 3);
            Py_ssize_t inner_start = opening + 4 > floor ? opening + 4 : floor;
            if (inner > inner_start && vs_add_span(&spans, inner_start, inner, SPAN_COMMENT) < 0) {
                goto failed;
            }
            position = closed;
            continue;
        }
        int letter = following == '/' ? (opening + 2 < n ? s[opening + 2] : -1) : following;
        if (following == '!' || following == '?' || letter < 0 || !is_letter((Py_UCS4)letter)) {
            if (following != '!' && following != '?' && following != '/') {
                position = opening + 1;
                guard = opening + 2;
                continue;
            }
            const Py_UCS1 *closed = memchr(s + opening, '>', (size_t)(n - opening));
            if (closed == NULL) {
                break;
            }
            position = (closed - s) + 1;
            continue;
        }
        Py_ssize_t name_end = 0;
        Py_ssize_t after = vs_tag_end(s, n, opening, &name_end);
        if (after < 0) {
            break;
        }
        if (following == '/') {
            position = after;
            continue;
        }
        Py_ssize_t name = opening + 1;
        int relevant = vs_one_of(s, name, name_end, vs_start_names);
        if (vs_attribute_spans(&spans, s, name_end, after - 1, relevant) < 0) {
            goto failed;
        }
        position = after;
        if (!relevant) {
            continue;
        }
        if (vs_one_of(s, name, name_end, (const char *const[]){"plaintext", NULL})) {
            break;
        }
        if (vs_one_of(s, name, name_end, (const char *const[]){"script", NULL})) {
            Py_ssize_t body_end = vs_script_body_end(s, n, after);
            if (body_end >= n) {
                break;
            }
            if (body_end > after && vs_add_span(&spans, after, body_end, SPAN_SCRIPT) < 0) {
                goto failed;
            }
            position = body_end;
            continue;
        }
        int opaque = vs_one_of(s, name, name_end, (const char *const[]){"iframe", "noscript", NULL});
        if (opaque || vs_one_of(s, name, name_end,
                             (const char *const[]){"style", "textarea", "title", "xmp", "noembed",
                                                   "noframes", NULL})) {
            Py_ssize_t close = vs_raw_end(s, n, after, name, name_end);
            if (close < 0) {
                break;
            }
            if (!opaque && close > after && vs_add_span(&spans, after, close, SPAN_RAW) < 0) {
                goto failed;
            }
            position = close;
        }
    }
    return spans.list;
failed:
    Py_DECREF(spans.list);
    return NULL;
}

static PyMethodDef methods[] = {
    {"landmarks", (PyCFunction)(void (*)(void))landmarks, METH_FASTCALL, landmarks_doc},
    {"mentions", (PyCFunction)(void (*)(void))mentions, METH_FASTCALL, mentions_doc},
    {"skip", (PyCFunction)(void (*)(void))skip, METH_FASTCALL, skip_doc},
    {"occurrences", (PyCFunction)(void (*)(void))occurrences, METH_FASTCALL, occurrences_doc},
    {"occurrences_all", (PyCFunction)(void (*)(void))occurrences_all, METH_FASTCALL,
     occurrences_all_doc},
    {"skim", (PyCFunction)(void (*)(void))skim, METH_FASTCALL, skim_doc},
    {"digest", (PyCFunction)digest, METH_O, digest_doc},
    {"join_raw", (PyCFunction)join_raw, METH_O, join_raw_doc},
    {"affixes", (PyCFunction)(void (*)(void))affixes, METH_FASTCALL, affixes_doc},
    {"splice_plan", (PyCFunction)(void (*)(void))splice_plan, METH_FASTCALL, splice_plan_doc},
    {"splice_join", (PyCFunction)(void (*)(void))splice_join, METH_FASTCALL, splice_join_doc},
    {"verbatim_spans", (PyCFunction)(void (*)(void))verbatim_spans, METH_FASTCALL,
     verbatim_spans_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "mypharm_consent._gatescan",
    "Compiled searches of mypharm_consent.gating (optional; the regular expressions\n"
    "there are the definition).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__gatescan(void) { return PyModule_Create(&module); }
