package wecom

import (
	"bytes"
	"unicode/utf8"
)

// scanFlat is the fast path for decoding WeCom's XML. Every envelope and
// nearly every message WeCom sends is flat:
//
//	<xml><Name><![CDATA[text]]></Name><Other>123</Other>...</xml>
//
// scanFlat walks such a document and calls set for each child element with
// its name and text, without allocating. It reports false as soon as the
// document leaves that shape (a declaration, comment, attribute, namespace,
// nested or self-closing element, entity, carriage return, mixed text and
// CDATA, a character XML forbids, or a syntax error); set may have been
// called by then, and the caller starts over with encoding/xml, which also
// produces the error for malformed input. When scanFlat reports true,
// encoding/xml would have decoded the same values; FuzzParseMessage and
// FuzzDecrypt check that. Like encoding/xml it ignores what follows </xml>.
func scanFlat(doc []byte, set func(name, value []byte)) bool {
	i := skipSpace(doc, 0)
	if !bytes.HasPrefix(doc[i:], []byte("<xml>")) {
		return false
	}
	i += len("<xml>")
	for {
		i = skipSpace(doc, i)
		rest := doc[i:]
		if bytes.HasPrefix(rest, []byte("</xml>")) {
			return true
		}
		// <Name>
		if len(rest) < 2 || rest[0] != '<' {
			return false
		}
		n := nameLen(rest[1:])
		if n == 0 || len(rest) < 1+n+1 || rest[1+n] != '>' {
			return false
		}
		name := rest[1 : 1+n]
		rest = rest[1+n+1:]

		// One CDATA section or plain text, then </Name>.
		var value []byte
		if bytes.HasPrefix(rest, []byte("<![CDATA[")) {
			rest = rest[len("<![CDATA["):]
			end := bytes.Index(rest, []byte("]]>"))
			if end < 0 {
				return false
			}
			value = rest[:end]
			rest = rest[end+len("]]>"):]
		} else {
			end := bytes.IndexByte(rest, '<')
			if end < 0 {
				return false
			}
			value = rest[:end]
			if bytes.IndexByte(value, '&') >= 0 || bytes.Contains(value, []byte("]]>")) {
				return false
			}
			rest = rest[end:]
		}
		if !plainChars(value) {
			return false
		}
		if len(rest) < n+3 || rest[0] != '<' || rest[1] != '/' ||
			!bytes.Equal(rest[2:2+n], name) || rest[2+n] != '>' {
			return false
		}
		set(name, value)
		i = len(doc) - len(rest) + n + 3
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// XML white space.
func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// nameLen returns the length of the ASCII element name b starts with:
// a letter or "_", then letters, digits or "_". It stops short of ":" so
// that namespaced names take the slow path.
func nameLen(b []byte) int {
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9':
			if i == 0 {
				return 0
			}
		default:
			return i
		}
	}
	return len(b)
}

// plainChars reports whether v is valid UTF-8 made only of characters XML
// allows, without "\r" (which encoding/xml rewrites to "\n").
func plainChars(v []byte) bool {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		i += size
	}
	return true
}
