package wechatoa

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"

	"github.com/silenceper/wechat/v2/util"
)

// Errors of callbacks that are not WeChat's for this account.
var (
	// ErrBadSignature: the signature does not match the account's token.
	ErrBadSignature = errors.New("wechat oa: bad signature")
	// ErrBadAppID: the message decrypts, but for another account.
	ErrBadAppID = errors.New("wechat oa: message sealed for another app id")
	// ErrPlaintextRefused: a plaintext message to an account in safe
	// mode.
	ErrPlaintextRefused = errors.New("wechat oa: plaintext message in safe mode")
)

// Signature is WeChat's callback signature: the hex SHA-1 of the sorted,
// concatenated parts (token, timestamp, nonce, and in AES modes the
// Encrypt element).
func Signature(parts ...string) string { return util.Signature(parts...) }

// sigEqual compares signatures in constant time.
func sigEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// envelope is an encrypted callback body: <xml><ToUserName/><Encrypt/></xml>
// (compatible mode adds the plaintext fields beside Encrypt).
type envelope struct {
	ToUserName string `xml:"ToUserName"`
	Encrypt    string `xml:"Encrypt"`
}

// Open verifies an encrypted callback body against msgSignature and
// returns the plaintext message XML.
func Open(token, aesKey, appID, msgSignature, timestamp, nonce string, body []byte) ([]byte, error) {
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("parsing encrypted callback: %w", err)
	}
	if env.Encrypt == "" {
		return nil, errors.New("encrypted callback without Encrypt")
	}
	if !sigEqual(Signature(token, timestamp, nonce, env.Encrypt), msgSignature) {
		return nil, ErrBadSignature
	}
	key, err := base64.StdEncoding.DecodeString(aesKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("encoding_aes_key: want 43 characters of base64")
	}
	sealed, err := base64.StdEncoding.DecodeString(env.Encrypt)
	if err != nil || len(sealed) == 0 || len(sealed)%aes.BlockSize != 0 {
		return nil, errors.New("decrypting callback: Encrypt is not AES blocks in base64")
	}
	_, plain, to, err := util.AESDecryptMsg(sealed, key)
	if err != nil {
		return nil, fmt.Errorf("decrypting callback: %w", err)
	}
	if string(to) != appID {
		return nil, ErrBadAppID
	}
	return plain, nil
}

// Seal encrypts a message XML as WeChat does (random is 16 bytes) and
// returns the Encrypt value: what the fake sends, and what the account
// would reply with in safe mode.
func Seal(aesKey, appID string, random, plain []byte) (string, error) {
	enc, err := util.EncryptMsg(random, plain, appID, aesKey)
	if err != nil {
		return "", fmt.Errorf("encrypting message: %w", err)
	}
	return string(enc), nil
}
