package wecom

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// WeCom's published sample for callback crypto, from the 加解密方案说明 page
// (developer.work.weixin.qq.com/document/path/90968, 91144) and the Sample
// files shipped with its official WXBizMsgCrypt libraries (weworkapi_*).
const (
	sampleToken          = "QDG6eK"
	sampleEncodingAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	sampleCorpID         = "wx5823bf96d3bd56c7"

	// URL verification: GET /cgi-bin/wxpush?msg_signature=...&timestamp=...
	// &nonce=...&echostr=... (echostr shown query-unescaped).
	sampleVerifySignature = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	sampleVerifyTimestamp = "1409659589"
	sampleVerifyNonce     = "263014780"
	sampleVerifyEchoStr   = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	sampleVerifyEcho      = "1616140317555161061"

	// Message callback: POST /cgi-bin/wxpush?msg_signature=...&timestamp=...
	// &nonce=... with sampleBody; it decrypts to testdata/official_sample.xml.
	sampleSignature = "477715d11cdb4164915debcba66cb864d751f3e6"
	sampleTimestamp = "1409659813"
	sampleNonce     = "1372623149"
	sampleEncrypt   = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
	sampleBody      = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[" + sampleEncrypt + "]]></Encrypt></xml>"
)

func newSampleCrypto(t testing.TB) *Crypto {
	t.Helper()
	return newTestCrypto(t, sampleCorpID)
}

func newTestCrypto(t testing.TB, receiveID string) *Crypto {
	t.Helper()
	c, err := NewCrypto(sampleToken, sampleEncodingAESKey, receiveID)
	if err != nil {
		t.Fatalf("NewCrypto: %v", err)
	}
	return c
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelopeXML builds a callback body the way WeCom does.
func envelopeXML(encrypt string) []byte {
	return []byte("<xml><ToUserName><![CDATA[" + sampleCorpID + "]]></ToUserName>" +
		"<Encrypt><![CDATA[" + encrypt + "]]></Encrypt>" +
		"<AgentID><![CDATA[218]]></AgentID></xml>")
}

// signature returns msg_signature for encrypt under c's token.
func signature(c *Crypto, timestamp, nonce, encrypt string) string {
	s := c.sign(timestamp, nonce, encrypt)
	return string(s[:])
}

// sealRaw encrypts a plaintext that is already whole AES blocks, padding and
// all, so tests can build payloads WeCom would never send.
func sealRaw(c *Crypto, plain []byte) string {
	buf := bytes.Clone(plain)
	cipher.NewCBCEncrypter(c.block, c.iv[:]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf)
}

// rawPlain lays out random + length + msg + receiveID and pads it with pad
// bytes of value padByte.
func rawPlain(length uint32, msg, receiveID string, pad int, padByte byte) []byte {
	b := make([]byte, headerLen, headerLen+len(msg)+len(receiveID)+pad)
	copy(b, "0123456789abcdef")
	binary.BigEndian.PutUint32(b[randomLen:], length)
	b = append(b, msg...)
	b = append(b, receiveID...)
	for range pad {
		b = append(b, padByte)
	}
	return b
}

// validPad returns the PKCS#7 pad length WeCom uses for n bytes.
func validPad(n int) int { return padBlockSize - n%padBlockSize }

func TestNewCrypto(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		key       string
		receiveID string
		wantErr   string
	}{
		{name: "sample settings", token: sampleToken, key: sampleEncodingAESKey, receiveID: sampleCorpID},
		{name: "empty receive id", token: sampleToken, key: sampleEncodingAESKey},
		{name: "empty token", key: sampleEncodingAESKey, receiveID: sampleCorpID, wantErr: "token is empty"},
		{name: "key too short", token: sampleToken, key: sampleEncodingAESKey[:42], receiveID: sampleCorpID, wantErr: "has 42 characters, want 43"},
		{name: "key too long", token: sampleToken, key: sampleEncodingAESKey + "=", receiveID: sampleCorpID, wantErr: "has 44 characters, want 43"},
		{name: "key not base64", token: sampleToken, key: "*" + sampleEncodingAESKey[1:], receiveID: sampleCorpID, wantErr: "decoding encoding aes key"},
		{name: "key padded inside", token: sampleToken, key: sampleEncodingAESKey[:40] + "===", receiveID: sampleCorpID, wantErr: "decoding encoding aes key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCrypto(tc.token, tc.key, tc.receiveID)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("NewCrypto() = %v, %v; want a Crypto", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewCrypto() error = %v; want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q reveals the key", err)
			}
		})
	}
}

func TestSampleVectors(t *testing.T) {
	c := newSampleCrypto(t)

	t.Run("signature", func(t *testing.T) {
		if got := signature(c, sampleTimestamp, sampleNonce, sampleEncrypt); got != sampleSignature {
			t.Errorf("signature = %s, want %s", got, sampleSignature)
		}
		if got := signature(c, sampleVerifyTimestamp, sampleVerifyNonce, sampleVerifyEchoStr); got != sampleVerifySignature {
			t.Errorf("url signature = %s, want %s", got, sampleVerifySignature)
		}
	})
	t.Run("verify url", func(t *testing.T) {
		got, err := c.VerifyURL(sampleVerifySignature, sampleVerifyTimestamp, sampleVerifyNonce, sampleVerifyEchoStr)
		if err != nil {
			t.Fatalf("VerifyURL: %v", err)
		}
		if string(got) != sampleVerifyEcho {
			t.Errorf("VerifyURL = %q, want %q", got, sampleVerifyEcho)
		}
	})
	t.Run("decrypt callback", func(t *testing.T) {
		got, err := c.Decrypt(sampleSignature, sampleTimestamp, sampleNonce, []byte(sampleBody))
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		if want := readTestdata(t, "official_sample.xml"); !bytes.Equal(got, want) {
			t.Errorf("Decrypt = %q, want %q", got, want)
		}
	})
}

// ExampleCrypto answers WeCom's sample URL verification and opens its sample
// callback.
func ExampleCrypto() {
	// Token, EncodingAESKey and corp id of WeCom's published sample.
	c, err := NewCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
	if err != nil {
		panic(err)
	}

	// GET ?msg_signature=...&timestamp=...&nonce=...&echostr=...
	echo, err := c.VerifyURL("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
		"P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")
	if err != nil {
		panic(err)
	}
	fmt.Printf("echo %s\n", echo)

	// POST ?msg_signature=...&timestamp=...&nonce=... with the XML envelope
	// (sampleBody) as body.
	plain, err := c.Decrypt("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", []byte(sampleBody))
	if err != nil {
		panic(err)
	}
	m, err := ParseMessage(plain)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.MsgType, m.FromUserName, m.Content, m.DedupKey())
	// Output:
	// echo 1616140317555161061
	// text mycreate hello msg:4561255354251345929
}

// parseReply reads a passive-reply envelope back.
func parseReply(t *testing.T, out []byte) (encrypt, sig, timestamp, nonce string) {
	t.Helper()
	var r struct {
		Encrypt      string `xml:"Encrypt"`
		MsgSignature string `xml:"MsgSignature"`
		TimeStamp    string `xml:"TimeStamp"`
		Nonce        string `xml:"Nonce"`
	}
	if err := xml.Unmarshal(out, &r); err != nil {
		t.Fatalf("parsing reply %q: %v", out, err)
	}
	return r.Encrypt, r.MsgSignature, r.TimeStamp, r.Nonce
}

func TestEncryptRoundTrip(t *testing.T) {
	type testCase struct {
		name      string
		receiveID string
		msg       []byte
		timestamp string
		nonce     string
	}
	tests := []testCase{
		{name: "official reply sample", receiveID: sampleCorpID, timestamp: sampleTimestamp, nonce: sampleNonce,
			msg: []byte("<xml><ToUserName><![CDATA[mycreate]]></ToUserName><FromUserName><![CDATA[wx582测试一下中文的情况，消息长度是按字节来算的396d3bd56c7]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId></xml>")},
		{name: "empty message", receiveID: sampleCorpID, timestamp: "1", nonce: "2"},
		{name: "empty receive id", receiveID: "", timestamp: "1", nonce: "2", msg: []byte("hello")},
		{name: "nonce with xml specials", receiveID: sampleCorpID, timestamp: "1409659813", nonce: "a]]>b<&c", msg: []byte("x")},
		{name: "64 KiB message", receiveID: sampleCorpID, timestamp: "1", nonce: "2", msg: bytes.Repeat([]byte("会员"), 64<<10/6)},
	}
	// Every pad length from 1 to 32.
	for n := range padBlockSize + 1 {
		tests = append(tests, testCase{
			name:      fmt.Sprintf("%d byte message", n),
			receiveID: sampleCorpID, timestamp: "1409659813", nonce: "1372623149",
			msg: bytes.Repeat([]byte{'m'}, n),
		})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCrypto(t, tc.receiveID)
			out, err := c.Encrypt(tc.msg, tc.timestamp, tc.nonce)
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			if !bytes.HasPrefix(out, []byte("<xml><Encrypt><![CDATA[")) {
				t.Errorf("reply %q does not start like WeCom's", out)
			}
			encrypt, sig, ts, nonce := parseReply(t, out)
			if ts != tc.timestamp || nonce != tc.nonce {
				t.Errorf("reply timestamp, nonce = %q, %q; want %q, %q", ts, nonce, tc.timestamp, tc.nonce)
			}
			if want := signature(c, tc.timestamp, tc.nonce, encrypt); sig != want {
				t.Errorf("reply MsgSignature = %s, want %s", sig, want)
			}
			if raw, _ := base64.StdEncoding.DecodeString(encrypt); len(raw)%padBlockSize != 0 {
				t.Errorf("ciphertext is %d bytes, want a multiple of %d", len(raw), padBlockSize)
			}

			// The reply envelope decrypts as is, as WeCom's Sample shows,
			// and so does the same payload in a callback envelope.
			for _, body := range [][]byte{out, envelopeXML(encrypt)} {
				got, err := c.Decrypt(sig, ts, nonce, body)
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				if !bytes.Equal(got, tc.msg) {
					t.Fatalf("Decrypt = %q, want %q", got, tc.msg)
				}
			}
			got, err := c.VerifyURL(sig, ts, nonce, encrypt)
			if err != nil || !bytes.Equal(got, tc.msg) {
				t.Fatalf("VerifyURL = %q, %v; want %q", got, err, tc.msg)
			}
		})
	}
}

func TestEncryptRejectsUnsafeTimestampOrNonce(t *testing.T) {
	c := newSampleCrypto(t)
	for _, tc := range []struct{ timestamp, nonce string }{
		{"1409659813", "a\rb"},
		{"1409659813", "\x00"},
		{"14096\xff59813", "1"},
	} {
		if out, err := c.Encrypt([]byte("x"), tc.timestamp, tc.nonce); err == nil {
			t.Errorf("Encrypt(%q, %q) = %q; want an error", tc.timestamp, tc.nonce, out)
		}
	}
}

func TestEncryptIsRandomized(t *testing.T) {
	c := newSampleCrypto(t)
	a, err := c.Encrypt([]byte("same"), "1", "2")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encrypt([]byte("same"), "1", "2")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two encryptions of one message are equal; the random prefix is missing")
	}
}

// signedRequest is a callback request as the handler would pass it on.
type signedRequest struct {
	sig, timestamp, nonce string
	body                  []byte
}

// signed builds a request whose signature is valid for encrypt.
func signed(c *Crypto, encrypt string) signedRequest {
	return signedRequest{
		sig:       signature(c, sampleTimestamp, sampleNonce, encrypt),
		timestamp: sampleTimestamp,
		nonce:     sampleNonce,
		body:      envelopeXML(encrypt),
	}
}

func TestDecryptRejects(t *testing.T) {
	c := newSampleCrypto(t)
	sample := signedRequest{sampleSignature, sampleTimestamp, sampleNonce, []byte(sampleBody)}
	withSig := func(sig string) signedRequest {
		r := sample
		r.sig = sig
		return r
	}
	otherKey, err := NewCrypto(sampleToken, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", sampleCorpID)
	if err != nil {
		t.Fatal(err)
	}
	msg := "<xml><MsgType>text</MsgType></xml>"
	okLen := headerLen + len(msg) + len(sampleCorpID)

	tests := []struct {
		name    string
		crypto  *Crypto // defaults to c
		req     signedRequest
		wantErr error
	}{
		{name: "signature of other payload", req: withSig("0" + sampleSignature[1:]), wantErr: ErrBadSignature},
		{name: "uppercase signature", req: withSig(strings.ToUpper(sampleSignature)), wantErr: ErrBadSignature},
		{name: "empty signature", req: withSig(""), wantErr: ErrBadSignature},
		{name: "signature too long", req: withSig(sampleSignature + "00"), wantErr: ErrBadSignature},
		{name: "signature truncated", req: withSig(sampleSignature[:39]), wantErr: ErrBadSignature},
		{name: "timestamp changed", req: signedRequest{sampleSignature, "1409659814", sampleNonce, []byte(sampleBody)}, wantErr: ErrBadSignature},
		{name: "nonce changed", req: signedRequest{sampleSignature, sampleTimestamp, "1372623148", []byte(sampleBody)}, wantErr: ErrBadSignature},
		{name: "other token", crypto: mustCrypto(t, "other", sampleEncodingAESKey, sampleCorpID), req: sample, wantErr: ErrBadSignature},
		{name: "other corp", crypto: newTestCrypto(t, "ww0000000000000000"), req: sample, wantErr: ErrBadReceiveID},
		{name: "empty receive id expected", crypto: newTestCrypto(t, ""), req: sample, wantErr: ErrBadReceiveID},
		{name: "other aes key", crypto: otherKey, req: sample, wantErr: ErrDecrypt},
		{name: "garbage base64", req: signed(c, "!!!not base64!!!"), wantErr: ErrDecrypt},
		{name: "truncated ciphertext", req: signed(c, sampleEncrypt[:len(sampleEncrypt)-4]), wantErr: ErrDecrypt},
		{name: "ciphertext shorter than a block", req: signed(c, "AAAA"), wantErr: ErrDecrypt},
		{name: "ciphertext not whole blocks", req: signed(c, base64.StdEncoding.EncodeToString(make([]byte, 40))), wantErr: ErrDecrypt},
		{name: "padding byte zero", req: signed(c, sealRaw(c, rawPlain(uint32(len(msg)), msg, sampleCorpID, validPad(okLen), 0))), wantErr: ErrDecrypt},
		{name: "padding byte 33", req: signed(c, sealRaw(c, rawPlain(uint32(len(msg)), msg, sampleCorpID, validPad(okLen)+32, 33))), wantErr: ErrDecrypt},
		{name: "padding bytes differ", req: signed(c, sealRaw(c, append(rawPlain(uint32(len(msg)), msg, sampleCorpID, validPad(okLen)-1, 9), byte(validPad(okLen))))), wantErr: ErrDecrypt},
		{name: "padding longer than ciphertext", req: signed(c, sealRaw(c, bytes.Repeat([]byte{32}, 16))), wantErr: ErrDecrypt},
		{name: "padding only", req: signed(c, sealRaw(c, bytes.Repeat([]byte{32}, 32))), wantErr: ErrDecrypt},
		{name: "plaintext shorter than header", req: signed(c, sealRaw(c, append(make([]byte, 19), bytes.Repeat([]byte{13}, 13)...))), wantErr: ErrDecrypt},
		{name: "length beyond plaintext", req: signed(c, sealRaw(c, rawPlain(uint32(len(msg)+len(sampleCorpID)+1), msg, sampleCorpID, validPad(okLen), byte(validPad(okLen))))), wantErr: ErrDecrypt},
		{name: "length 2^32-1", req: signed(c, sealRaw(c, rawPlain(1<<32-1, msg, sampleCorpID, validPad(okLen), byte(validPad(okLen))))), wantErr: ErrDecrypt},
		{name: "length swallows receive id", req: signed(c, sealRaw(c, rawPlain(uint32(len(msg)+len(sampleCorpID)), msg, sampleCorpID, validPad(okLen), byte(validPad(okLen))))), wantErr: ErrBadReceiveID},
		{name: "receive id of other corp", req: signed(c, sealRaw(c, rawPlain(uint32(len(msg)), msg, "ww0000000000000000", validPad(okLen), byte(validPad(okLen))))), wantErr: ErrBadReceiveID},
		{name: "empty body", req: withBody(sample, ""), wantErr: ErrMalformed},
		{name: "not xml", req: withBody(sample, "encrypt="+sampleEncrypt), wantErr: ErrMalformed},
		{name: "truncated xml", req: withBody(sample, sampleBody[:40]), wantErr: ErrMalformed},
		{name: "other root element", req: withBody(sample, "<msg><Encrypt>"+sampleEncrypt+"</Encrypt></msg>"), wantErr: ErrMalformed},
		{name: "no Encrypt element", req: withBody(sample, "<xml><ToUserName>wx5823bf96d3bd56c7</ToUserName></xml>"), wantErr: ErrMalformed},
		{name: "empty Encrypt element", req: signed(c, ""), wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := tc.crypto
			if cr == nil {
				cr = c
			}
			got, err := cr.Decrypt(tc.req.sig, tc.req.timestamp, tc.req.nonce, tc.req.body)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Decrypt() = %q, %v; want error %v", got, err, tc.wantErr)
			}
			if got != nil {
				t.Errorf("Decrypt() returned %q with the error", got)
			}
			if tc.req.sig != "" && strings.Contains(err.Error(), tc.req.sig) {
				t.Errorf("error %q reveals the signature", err)
			}
		})
	}
}

func withBody(r signedRequest, body string) signedRequest {
	r.body = []byte(body)
	return r
}

func mustCrypto(t *testing.T, token, key, receiveID string) *Crypto {
	t.Helper()
	c, err := NewCrypto(token, key, receiveID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyURLRejects(t *testing.T) {
	c := newSampleCrypto(t)
	tests := []struct {
		name    string
		crypto  *Crypto
		sig     string
		echostr string
		wantErr error
	}{
		{name: "bad signature", sig: sampleSignature, echostr: sampleVerifyEchoStr, wantErr: ErrBadSignature},
		{name: "empty echostr", sig: signature(c, sampleVerifyTimestamp, sampleVerifyNonce, ""), wantErr: ErrMalformed},
		{name: "other corp", crypto: newTestCrypto(t, "ww0000000000000000"), sig: sampleVerifySignature, echostr: sampleVerifyEchoStr, wantErr: ErrBadReceiveID},
		{name: "plus turned into space by a careless unescape", sig: sampleVerifySignature,
			echostr: strings.ReplaceAll(sampleVerifyEchoStr, "+", " "), wantErr: ErrBadSignature},
		{name: "garbage", sig: signature(c, sampleVerifyTimestamp, sampleVerifyNonce, "%%%"), echostr: "%%%", wantErr: ErrDecrypt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := tc.crypto
			if cr == nil {
				cr = c
			}
			got, err := cr.VerifyURL(tc.sig, sampleVerifyTimestamp, sampleVerifyNonce, tc.echostr)
			if !errors.Is(err, tc.wantErr) || got != nil {
				t.Fatalf("VerifyURL() = %q, %v; want error %v", got, err, tc.wantErr)
			}
		})
	}
}

func TestCryptoConcurrentUse(t *testing.T) {
	c := newSampleCrypto(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				msg := fmt.Appendf(nil, "<xml><MsgId>%d%d</MsgId></xml>", g, i)
				out, err := c.Encrypt(msg, "1409659813", "1372623149")
				if err != nil {
					errs <- err
					return
				}
				var r struct{ Encrypt, MsgSignature string }
				if err := xml.Unmarshal(out, &r); err != nil {
					errs <- err
					return
				}
				got, err := c.Decrypt(r.MsgSignature, "1409659813", "1372623149", out)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("got %q, want %q", got, msg)
					return
				}
				if _, err := c.Decrypt(sampleSignature, sampleTimestamp, sampleNonce, []byte(sampleBody)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	c := newSampleCrypto(b)
	body := []byte(sampleBody)

	b.Run("sample", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := c.Decrypt(sampleSignature, sampleTimestamp, sampleNonce, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sample+parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			plain, err := c.Decrypt(sampleSignature, sampleTimestamp, sampleNonce, body)
			if err != nil {
				b.Fatal(err)
			}
			m, err := ParseMessage(plain)
			if err != nil {
				b.Fatal(err)
			}
			_ = m.DedupKey()
		}
	})
	b.Run("contact_event+parse/parallel", func(b *testing.B) {
		out, err := c.Encrypt(readTestdata(b, "add_external_contact.xml"), sampleTimestamp, sampleNonce)
		if err != nil {
			b.Fatal(err)
		}
		var r struct{ MsgSignature string }
		if err := xml.Unmarshal(out, &r); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				plain, err := c.Decrypt(r.MsgSignature, sampleTimestamp, sampleNonce, out)
				if err != nil {
					b.Fatal(err)
				}
				m, err := ParseMessage(plain)
				if err != nil {
					b.Fatal(err)
				}
				_ = m.DedupKey()
			}
		})
	})
	b.Run("bad_signature", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Decrypt(sampleVerifySignature, sampleTimestamp, sampleNonce, body); err == nil {
				b.Fatal("accepted a bad signature")
			}
		}
	})
}
