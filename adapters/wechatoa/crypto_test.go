package wechatoa

import (
	"errors"
	"strings"
	"testing"
)

// WeChat's published message-encryption sample (the WXBizMsgCrypt test
// of the Official Account platform's sample code): this key, app id and
// 16-byte random seal "我是中文abcd123" into exactly this Encrypt value.
const (
	sampleToken   = "pamtest"
	sampleAESKey  = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	sampleAppID   = "wxb11529c136998cb6"
	sampleRandom  = "aaaabbbbccccdddd"
	samplePlain   = "我是中文abcd123"
	sampleEncrypt = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
	sampleTS      = "1409304348"
	sampleNonce   = "xxxxxx"
)

func TestPublishedSample(t *testing.T) {
	got, err := Seal(sampleAESKey, sampleAppID, []byte(sampleRandom), []byte(samplePlain))
	if err != nil {
		t.Fatal(err)
	}
	if got != sampleEncrypt {
		t.Errorf("Seal = %s\nwant  %s", got, sampleEncrypt)
	}
	body := []byte("<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[" + sampleEncrypt + "]]></Encrypt></xml>")
	sig := Signature(sampleToken, sampleTS, sampleNonce, sampleEncrypt)
	plain, err := Open(sampleToken, sampleAESKey, sampleAppID, sig, sampleTS, sampleNonce, body)
	if err != nil || string(plain) != samplePlain {
		t.Errorf("Open = %q, %v; want %q", plain, err, samplePlain)
	}
	for _, tc := range []struct {
		name         string
		token, appID string
		want         error
	}{
		{"another token", "other", sampleAppID, ErrBadSignature},
		{"another app", sampleToken, "wx0000000000000000", ErrBadAppID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.token, sampleAESKey, tc.appID, sig, sampleTS, sampleNonce, body)
			if !errors.Is(err, tc.want) {
				t.Errorf("Open = %v, want %v", err, tc.want)
			}
		})
	}
	// The signature is SHA-1 of the sorted parts, in lower-case hex.
	if s := Signature("b", "a", "c"); s != "a9993e364706816aba3e25717850c26c9cd0d89d" || strings.ToLower(s) != s {
		t.Errorf("Signature(b, a, c) = %s, want sha1(abc)", s)
	}
}
