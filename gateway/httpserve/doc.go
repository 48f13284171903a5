// Package httpserve is the gateway's HTTP edge, what every request passes
// before a route: the refusal rate limiter (clients that keep sending
// forged callbacks or wrong tokens are answered 429), request metrics, the
// metrics token and the queue metrics.
//
// Imported only by the wiring, which builds the HTTP handler. It imports
// no package of the project.
package httpserve
