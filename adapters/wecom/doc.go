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
//
// # Sending
//
// Client.Send picks the route from the message, and each route carries
// some of the adapters message kinds (Spec lists them; Spec's Preview
// shows the exact request, built by the same code as Send's):
//
//	route                 when                      API                                 kinds
//	member, through guide Via set                   externalcontact/add_msg_template    text, news, miniprogram, image, file
//	new contact's welcome Fields welcome_code        externalcontact/send_welcome_msg    text, news, miniprogram, image, file
//	member, kf session    ReplyTo open_kfid         kf/send_msg                         text, news, miniprogram, image, file
//	guide                 ToParty guide             message/send                        text, textcard, news, markdown
//
// On the first two routes a message is a text (Outbound.Text, at most 4000
// bytes) and one attachment: news is a link attachment (title,
// description as desc, url, picurl), miniprogram a miniprogram attachment
// (title, appid, page, and pic_media_id), image and file their media. A kf
// message is one object: text; news as a link (which needs a picurl, its
// thumbnail); miniprogram (pagepath from page, thumb_media_id); image;
// file; a Text beside a card is not sent, save as a missing description.
// App messages to guides are text, markdown (Text), textcard (Text as the
// description; title, url, btntxt) or news (one article: title,
// description, url, picurl). Titles and descriptions over WeCom's limits
// (128 and 512 bytes, 64 for a miniprogram title) are cut on a character
// boundary; a link over 2048 bytes is refused.
//
// A kind the route does not carry, a missing field or an unusable picture
// is an error wrapping adapters.ErrInvalidMessage that says why: the
// outbound queue does not retry it. So are the API's own refusals
// (ErrInvalidRequest).
//
// # Media
//
// Pictures and files are sent by media id. A field that holds an http(s)
// URL instead (image picurl, file url, miniprogram pic_media_id or
// picurl, the kf link's picurl) is fetched (20-second timeout, at most 10
// MB for a JPG or PNG image, checked by its content, 20 MB for a file),
// uploaded with media/upload, and its media id cached per URL in
// Deps.Tokens (key wecom:media:<corp>:<type>:<hash>) for 60 hours, under
// WeCom's 3 days, so replicas share it. A source that answers 404, is not
// a JPG or PNG, or is too large, and an upload WeCom refuses, are
// ErrInvalidMessage; a network failure, a 5xx or a busy WeCom are
// ErrTemporary. When WeCom refuses a cached media id (40007) the entry is
// dropped and the send fails retryably, to upload it again. Previews show
// the source URL where the media id will be. Neither tokens nor media
// content are logged.
package wecom
