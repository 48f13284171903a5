package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// defaultLang is the language when neither the cookie nor Accept-Language
// names one the console speaks.
const defaultLang = "zh"

// language picks the request's language: the switch's cookie, else the
// best of Accept-Language, else defaultLang.
func language(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil {
		if _, ok := catalogue[ck.Value]; ok {
			return ck.Value
		}
	}
	best, bestQ := "", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if _, ok := catalogue[base]; ok && q > bestQ {
			best, bestQ = base, q
		}
	}
	if best == "" {
		return defaultLang
	}
	return best
}

// translate returns the message of key in lang, formatted with args; a
// missing key shows itself (the catalogue test keeps that from shipping).
func translate(lang, key string, args ...any) string {
	m, ok := catalogue[lang][key]
	if !ok {
		m, ok = catalogue[defaultLang][key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}
