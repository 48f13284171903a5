// Package wecom connects scrmgw to WeCom (企业微信): employees (guides)
// talking to the brand's app, customer-contact (客户联系) events about the
// customers (scrmgw's members) they add, and WeCom customer-service (微信客服)
// notifications. Where WeCom says 成员 (member) it means an employee; this
// package says employee.
//
// # Callbacks
//
// WeCom delivers messages and events by HTTP callback, signed and
// AES-encrypted per its 加解密方案 (callback encryption scheme). The
// callback layer of this package is plain functions over bytes, with no
// HTTP or storage in it:
//
//   - Crypto, built once per app from its Token, EncodingAESKey and receive
//     id (the corp id), answers URL verification (VerifyURL), verifies and
//     decrypts callback bodies (Decrypt) and seals passive replies
//     (Encrypt).
//   - ParseMessage decodes the decrypted XML into a Message, and
//     Message.DedupKey names the delivery, so that the inbox's unique key
//     turns WeCom's retries of a callback into no-ops.
//
// Failures wrap the sentinel errors ErrBadSignature, ErrBadReceiveID,
// ErrDecrypt and ErrMalformed, which an HTTP handler maps onto 4xx answers
// with errors.Is. The errors never contain the token, the key or a
// signature. Message.Token and Message.WelcomeCode are short-lived
// credentials: mask them in logs too.
//
// WeCom expects an answer within 5 seconds and retries otherwise, so a
// handler verifies, decrypts, parses and durably records the message, then
// answers; everything slow happens later, off the request.
//
// Decoding is fast and allocates little: the flat XML that WeCom sends is
// read without encoding/xml, which handles anything else; the two are fuzzed
// against each other.
package wecom
