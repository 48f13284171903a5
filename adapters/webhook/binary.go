package webhook

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// The CloudEvents HTTP binding's binary content mode: every context
// attribute is a header named "ce-" and the attribute ("ce-id",
// "ce-brand" for scrmgw's extension), the data is the body, and the
// Content-Type is the datacontenttype. Header values are percent-encoded
// where they hold characters outside printable ASCII.

// ceHeader is the prefix of binary-mode attribute headers, as net/http
// canonicalises it.
const ceHeader = "Ce-"

// binaryMode says whether a request carries its event's attributes in
// ce-* headers.
func binaryMode(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(textproto.CanonicalMIMEHeaderKey(k), ceHeader) {
			return true
		}
	}
	return false
}

// binaryRequired are the attributes a binary-mode request must carry.
var binaryRequired = []string{"specversion", "id", "source", "type"}

// binaryEvent reads a binary-mode event from its headers and body; a
// missing required header or a body that is not JSON is a fault naming
// it.
func binaryEvent(h http.Header, body []byte) (*cloudEvent, []Fault) {
	var faults []Fault
	attr := func(name string) string {
		v := h.Get(ceHeader + name)
		d, err := url.PathUnescape(v)
		if err != nil {
			faults = append(faults, Fault{Path: binaryName(name), Message: "bad percent-encoding"})
			return v
		}
		return d
	}
	ev := &cloudEvent{SpecVersion: attr("specversion"), ID: attr("id"), Source: attr("source"), Type: attr("type"),
		Subject: attr("subject"), Time: attr("time"), Brand: attr("brand"), DataContentType: h.Get("Content-Type")}
	for _, name := range binaryRequired {
		if h.Get(ceHeader+name) == "" {
			faults = append(faults, Fault{Path: binaryName(name), Message: "header is missing (a binary-mode CloudEvent carries its attributes in ce-* headers)"})
		}
	}
	if ct, _, _ := mime.ParseMediaType(ev.DataContentType); ev.DataContentType != "" && ct != "application/json" {
		faults = append(faults, Fault{Path: "Content-Type", Message: fmt.Sprintf("only application/json data is accepted, got %q", ev.DataContentType)})
	} else if len(body) > 0 {
		if !json.Valid(body) {
			faults = append(faults, Fault{Path: "body", Message: "want JSON data (Content-Type: application/json)"})
		}
	}
	if len(body) > 0 {
		ev.Data = body
	}
	return ev, faults
}

// binaryName is the header an attribute travels in; data paths stay as
// they are ("data.items[0].qty").
func binaryName(attr string) string {
	switch {
	case attr == "datacontenttype":
		return "Content-Type"
	case attr == "data" || strings.HasPrefix(attr, "data.") || strings.HasPrefix(attr, "data["):
		return attr
	}
	return "ce-" + attr
}

// writeFaults refuses a request with its faults; a binary-mode request's
// message spells them out, as its sender has no JSON body to look at.
func writeFaults(w http.ResponseWriter, faults []Fault, binary bool) {
	msg := fmt.Sprintf("%d fault(s); nothing was recorded", len(faults))
	if binary {
		parts := make([]string, len(faults))
		for i, f := range faults {
			parts[i] = f.Path + ": " + f.Message
		}
		msg = "binary-mode CloudEvent refused: " + strings.Join(parts, "; ") + "; nothing was recorded"
	}
	WriteError(w, http.StatusBadRequest, msg, faults)
}
