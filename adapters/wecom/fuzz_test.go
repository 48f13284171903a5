package wecom

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecrypt feeds Decrypt arbitrary envelopes and arbitrary plaintexts.
// A random signature never verifies, so each input is also re-signed to
// reach the decryption, and raw is encrypted as is (no padding added) to
// reach the padding, length and receive id checks with plaintexts WeCom
// would never produce. Seeds: testdata/fuzz/FuzzDecrypt.
func FuzzDecrypt(f *testing.F) {
	c := newSampleCrypto(f)
	f.Fuzz(func(t *testing.T, body []byte, raw []byte) {
		// As received, with the sample's signature: only a body carrying
		// the sample's Encrypt verifies.
		if got, err := c.Decrypt(sampleSignature, sampleTimestamp, sampleNonce, body); err == nil {
			if encrypt, _ := parseEnvelope(body); encrypt != sampleEncrypt {
				t.Fatalf("Decrypt accepted %q with the sample signature, got %q", body, got)
			}
		}

		// The fast envelope path agrees with encoding/xml.
		var fast []byte
		if scanFlat(body, func(name, value []byte) {
			if string(name) == "Encrypt" {
				fast = value
			}
		}) {
			var env envelope
			if err := xml.Unmarshal(body, &env); err != nil || env.Encrypt != string(fast) {
				t.Fatalf("scanFlat read Encrypt %q from %q; encoding/xml: %q, %v", fast, body, env.Encrypt, err)
			}
		}

		// Re-signed: whatever the Encrypt field holds gets decrypted.
		if encrypt, err := parseEnvelope(body); err == nil {
			sig := signature(c, sampleTimestamp, sampleNonce, encrypt)
			got, err := c.Decrypt(sig, sampleTimestamp, sampleNonce, body)
			checkOpened(t, got, err, base64.StdEncoding.DecodedLen(len(encrypt)))
			if _, err := c.VerifyURL(sig, sampleTimestamp, sampleNonce, encrypt); errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifyURL rejected the signature Decrypt accepted: %v", err)
			}
		}

		// Raw plaintext, cut to whole AES blocks.
		raw = raw[:len(raw)/16*16]
		if len(raw) == 0 {
			return
		}
		encrypt := sealRaw(c, raw)
		got, err := c.Decrypt(signature(c, sampleTimestamp, sampleNonce, encrypt), sampleTimestamp, sampleNonce, envelopeXML(encrypt))
		checkOpened(t, got, err, len(raw))
		if err == nil {
			// What Decrypt accepted is exactly a well-formed plaintext.
			pad := int(raw[len(raw)-1])
			want := raw[headerLen : len(raw)-pad-len(sampleCorpID)]
			if !bytes.Equal(got, want) {
				t.Fatalf("Decrypt(raw %x) = %q, want %q", raw, got, want)
			}
		}
	})
}

// checkOpened checks the result of a Decrypt that got past the signature.
func checkOpened(t *testing.T, got []byte, err error, maxLen int) {
	t.Helper()
	if err != nil {
		if got != nil {
			t.Fatalf("Decrypt returned %q with error %v", got, err)
		}
		if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrBadReceiveID) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decrypt error %v wraps no sentinel", err)
		}
		if errors.Is(err, ErrBadSignature) {
			t.Fatalf("Decrypt rejected a valid signature: %v", err)
		}
		return
	}
	if len(got) > maxLen {
		t.Fatalf("Decrypt returned %d bytes out of at most %d", len(got), maxLen)
	}
	if cap(got) != len(got) {
		t.Fatalf("Decrypt returned a slice with spare capacity %d > %d: appending would clobber the receive id", cap(got), len(got))
	}
}

// FuzzParseMessage feeds ParseMessage arbitrary plaintexts. Seeds:
// testdata/fuzz/FuzzParseMessage.
func FuzzParseMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, plain []byte) {
		// The fast path agrees with encoding/xml whenever it answers.
		var fast wireMessage
		if scanFlat(plain, fast.set) {
			var slow wireMessage
			if err := xml.Unmarshal(plain, &slow); err != nil {
				t.Fatalf("scanFlat accepted %q, which encoding/xml rejects: %v", plain, err)
			}
			slow.XMLName = xml.Name{}
			if diff := cmp.Diff(slow, fast); diff != "" {
				t.Fatalf("scanFlat and encoding/xml disagree on %q (-xml +scanFlat):\n%s", plain, diff)
			}
		}

		m, err := ParseMessage(plain)
		if err != nil {
			if m != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseMessage() = %+v, %v; want nil and ErrMalformed", m, err)
			}
			return
		}
		if strings.TrimSpace(m.MsgType) == "" || m.CreateTime < 0 {
			t.Fatalf("ParseMessage accepted %+v", m)
		}
		if m.MsgType == MsgTypeLocation {
			if math.IsNaN(m.Latitude) || math.Abs(m.Latitude) > 90 || math.IsNaN(m.Longitude) || math.Abs(m.Longitude) > 180 {
				t.Fatalf("ParseMessage accepted point %v, %v", m.Latitude, m.Longitude)
			}
		}
		key := m.DedupKey()
		if key == "" {
			t.Fatal("empty DedupKey")
		}
		if m2, err := ParseMessage(plain); err != nil || m2.DedupKey() != key {
			t.Fatalf("ParseMessage is not deterministic: %v", err)
		}
	})
}
