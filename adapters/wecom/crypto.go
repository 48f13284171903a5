package wecom

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
)

// Sentinel errors of the callback layer. The HTTP handler maps them onto 4xx
// answers with errors.Is: ErrBadSignature and ErrBadReceiveID mean the request
// is not (or not for us) from WeCom, ErrDecrypt and ErrMalformed mean its
// payload cannot be read.
var (
	// ErrBadSignature means msg_signature does not match the token,
	// timestamp, nonce and encrypted payload.
	ErrBadSignature = errors.New("bad signature")
	// ErrBadReceiveID means the payload decrypted but was sealed for another
	// receive id (another corp, or a suite).
	ErrBadReceiveID = errors.New("receive id mismatch")
	// ErrDecrypt means the encrypted payload is not valid base64, not whole
	// AES blocks, badly padded or carries an impossible length.
	ErrDecrypt = errors.New("cannot decrypt payload")
	// ErrMalformed means the XML envelope or message is not what WeCom
	// sends.
	ErrMalformed = errors.New("malformed callback")
)

const (
	// encodingAESKeyLen is the length of a WeCom EncodingAESKey: 43 base64
	// characters, the encoding of a 32-byte AES-256 key without its "=".
	encodingAESKeyLen = 43
	// padBlockSize is the PKCS#7 block size WeCom pads plaintexts to. It is
	// 32, not the AES block size of 16.
	padBlockSize = 32
	// randomLen and lengthLen make up the plaintext header:
	// 16 random bytes, then the message length as a big-endian uint32.
	randomLen = 16
	lengthLen = 4
	headerLen = randomLen + lengthLen
)

// Crypto verifies, decrypts and encrypts WeCom callback payloads following
// WeCom's 加解密方案 (callback encryption scheme):
//
//   - msg_signature is the lowercase hex SHA-1 of the byte-wise sorted
//     concatenation of token, timestamp, nonce and the encrypted string;
//   - the encrypted string is base64 of AES-256-CBC over
//     16 random bytes + uint32 big-endian msg length + msg + receive id,
//     PKCS#7-padded to a multiple of 32 bytes, with key
//     base64decode(EncodingAESKey + "=") and IV the key's first 16 bytes.
//
// A Crypto is safe for concurrent use.
type Crypto struct {
	token     string
	receiveID string
	block     cipher.Block
	iv        [aes.BlockSize]byte
}

// NewCrypto returns a Crypto for the callback settings of a WeCom app: the
// Token and EncodingAESKey set on its "receive messages" page and the receive
// id the payloads are sealed for (the corp id for a self-built app, the suite
// id for third-party app events, empty for apps of personal-subject
// providers).
func NewCrypto(token, encodingAESKey, receiveID string) (*Crypto, error) {
	if token == "" {
		return nil, errors.New("creating wecom crypto: token is empty")
	}
	if len(encodingAESKey) != encodingAESKeyLen {
		return nil, fmt.Errorf("creating wecom crypto: encoding aes key has %d characters, want %d",
			len(encodingAESKey), encodingAESKeyLen)
	}
	// Not base64.StdEncoding.Strict(): the 43rd character carries two
	// unused bits that real keys (WeCom's own sample key among them) set.
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil {
		return nil, fmt.Errorf("creating wecom crypto: decoding encoding aes key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("creating wecom crypto: encoding aes key decodes to %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("creating wecom crypto: %w", err)
	}
	c := &Crypto{token: token, receiveID: receiveID, block: block}
	copy(c.iv[:], key[:aes.BlockSize])
	return c, nil
}

// envelope is the body WeCom POSTs to the callback URL:
// <xml><ToUserName/><AgentID/><Encrypt/></xml>. Only Encrypt is read; the
// other fields are unauthenticated and the decrypted message repeats them.
type envelope struct {
	XMLName xml.Name `xml:"xml"`
	Encrypt string   `xml:"Encrypt"`
}

// parseEnvelope returns the Encrypt field of a callback body.
func parseEnvelope(body []byte) (string, error) {
	var encrypt []byte
	if scanFlat(body, func(name, value []byte) {
		if string(name) == "Encrypt" {
			encrypt = value
		}
	}) {
		if len(encrypt) == 0 {
			return "", fmt.Errorf("parsing callback envelope: no Encrypt element: %w", ErrMalformed)
		}
		return string(encrypt), nil
	}
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return "", fmt.Errorf("parsing callback envelope: %w: %w", ErrMalformed, err)
	}
	if env.Encrypt == "" {
		return "", fmt.Errorf("parsing callback envelope: no Encrypt element: %w", ErrMalformed)
	}
	return env.Encrypt, nil
}

// replyEnvelope is a passive reply:
// <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>.
type replyEnvelope struct {
	XMLName      xml.Name `xml:"xml"`
	Encrypt      cdata    `xml:"Encrypt"`
	MsgSignature cdata    `xml:"MsgSignature"`
	TimeStamp    string   `xml:"TimeStamp"`
	Nonce        cdata    `xml:"Nonce"`
}

type cdata struct {
	Value string `xml:",cdata"`
}

// VerifyURL answers WeCom's URL verification request (a GET with
// msg_signature, timestamp, nonce and echostr, query-unescaped): it checks
// the signature over echostr, decrypts it and returns the plaintext, which
// the handler writes back as the response body.
func (c *Crypto) VerifyURL(msgSignature, timestamp, nonce, echostr string) ([]byte, error) {
	if echostr == "" {
		return nil, fmt.Errorf("verifying url: empty echostr: %w", ErrMalformed)
	}
	if !c.verify(msgSignature, timestamp, nonce, echostr) {
		return nil, fmt.Errorf("verifying url: %w", ErrBadSignature)
	}
	msg, err := c.open(echostr)
	if err != nil {
		return nil, fmt.Errorf("verifying url: %w", err)
	}
	return msg, nil
}

// Decrypt opens a callback POST: body is the XML envelope, the other
// arguments come from the query string. It verifies the signature over the
// envelope's Encrypt field in constant time before decrypting anything (so
// the padding checks cannot serve as an oracle), decrypts, and checks that
// the payload was sealed for our receive id. It returns the plaintext
// message XML for ParseMessage. It never panics, whatever the input.
func (c *Crypto) Decrypt(msgSignature, timestamp, nonce string, body []byte) ([]byte, error) {
	encrypt, err := parseEnvelope(body)
	if err != nil {
		return nil, err
	}
	if !c.verify(msgSignature, timestamp, nonce, encrypt) {
		return nil, fmt.Errorf("decrypting callback: %w", ErrBadSignature)
	}
	msg, err := c.open(encrypt)
	if err != nil {
		return nil, fmt.Errorf("decrypting callback: %w", err)
	}
	return msg, nil
}

// Encrypt seals msg for our receive id and returns the passive-reply
// envelope <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>, signed
// over timestamp and nonce. Decrypt accepts the envelope back (with its
// MsgSignature), which is how tests build callbacks exactly as WeCom does.
func (c *Crypto) Encrypt(msg []byte, timestamp, nonce string) ([]byte, error) {
	// XML would alter them and the signature would no longer match.
	if !plainChars([]byte(timestamp)) || !plainChars([]byte(nonce)) {
		return nil, errors.New("encrypting reply: timestamp or nonce holds characters xml cannot carry")
	}
	encrypt, err := c.seal(rand.Reader, msg)
	if err != nil {
		return nil, fmt.Errorf("encrypting reply: %w", err)
	}
	sig := c.sign(timestamp, nonce, encrypt)
	out, err := xml.Marshal(replyEnvelope{
		Encrypt:      cdata{encrypt},
		MsgSignature: cdata{string(sig[:])},
		TimeStamp:    timestamp,
		Nonce:        cdata{nonce},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding reply envelope: %w", err)
	}
	return out, nil
}

// sign returns msg_signature: the hex SHA-1 of the sorted concatenation of
// token, timestamp, nonce and encrypt. SHA-1 is WeCom's choice, not ours.
func (c *Crypto) sign(timestamp, nonce, encrypt string) [sha1.Size * 2]byte {
	parts := [4]string{c.token, timestamp, nonce, encrypt}
	// Insertion sort: four strings, no allocation.
	for i := 1; i < len(parts); i++ {
		for j := i; j > 0 && parts[j] < parts[j-1]; j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
	// Concatenate on the stack when the payload is of usual size.
	var stack [2048]byte
	buf := stack[:0]
	if n := len(c.token) + len(timestamp) + len(nonce) + len(encrypt); n > len(stack) {
		buf = make([]byte, 0, n)
	}
	for _, p := range parts {
		buf = append(buf, p...)
	}
	sum := sha1.Sum(buf)
	var out [sha1.Size * 2]byte
	hex.Encode(out[:], sum[:])
	return out
}

// verify reports in constant time whether msgSignature is the signature of
// the other arguments.
func (c *Crypto) verify(msgSignature, timestamp, nonce, encrypt string) bool {
	want := c.sign(timestamp, nonce, encrypt)
	if len(msgSignature) != len(want) {
		return false
	}
	var got [len(want)]byte
	copy(got[:], msgSignature)
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// open decrypts an encrypted string and returns the message it carries,
// checking padding, the length field and the receive id. It allocates only
// the decoded buffer (the message is a slice of it) and the CBC mode.
//
// This is crypto/aes used directly rather than the util package of
// github.com/silenceper/wechat/v2: util.DecryptMsg decodes the EncodingAESKey
// and expands the AES key on every call, uses panic/recover for control flow,
// reports errors as strings that cannot be told apart with errors.Is, does not
// check every padding byte and rejects an empty receive id (which WeCom uses
// for some third-party apps). Here the block cipher is built once in
// NewCrypto, and a whole Decrypt costs three allocations.
func (c *Crypto) open(encrypt string) ([]byte, error) {
	buf, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, fmt.Errorf("decoding base64: %w", ErrDecrypt)
	}
	if len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("ciphertext of %d bytes is not whole aes blocks: %w", len(buf), ErrDecrypt)
	}
	cipher.NewCBCDecrypter(c.block, c.iv[:]).CryptBlocks(buf, buf)

	pad := int(buf[len(buf)-1])
	if pad < 1 || pad > padBlockSize || pad > len(buf) {
		return nil, fmt.Errorf("removing padding: %w", ErrDecrypt)
	}
	for _, b := range buf[len(buf)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("removing padding: %w", ErrDecrypt)
		}
	}
	plain := buf[:len(buf)-pad]

	if len(plain) < headerLen {
		return nil, fmt.Errorf("plaintext of %d bytes has no header: %w", len(plain), ErrDecrypt)
	}
	n := binary.BigEndian.Uint32(plain[randomLen:headerLen])
	if uint64(n) > uint64(len(plain)-headerLen) {
		return nil, fmt.Errorf("message length %d exceeds plaintext: %w", n, ErrDecrypt)
	}
	end := headerLen + int(n)
	if string(plain[end:]) != c.receiveID {
		return nil, fmt.Errorf("checking receive id: %w", ErrBadReceiveID)
	}
	return plain[headerLen:end:end], nil
}

// seal encrypts msg for our receive id with random bytes from r and returns
// the base64 encrypted string.
func (c *Crypto) seal(r io.Reader, msg []byte) (string, error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return "", fmt.Errorf("message of %d bytes is too long", len(msg))
	}
	n := headerLen + len(msg) + len(c.receiveID)
	pad := padBlockSize - n%padBlockSize
	buf := make([]byte, n+pad)
	if _, err := io.ReadFull(r, buf[:randomLen]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	binary.BigEndian.PutUint32(buf[randomLen:headerLen], uint32(len(msg)))
	copy(buf[headerLen:], msg)
	copy(buf[headerLen+len(msg):], c.receiveID)
	for i := n; i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, c.iv[:]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}
