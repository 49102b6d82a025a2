/*
 * tls.c - OpenSSL contexts for the server (certificate, key, optional
 * client CA for mutual TLS) and the client (server verification against a
 * CA, optional client certificate). TLS 1.2 is the floor.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "net/net.h"

void thn_tls_errors(char *buf, size_t cap)
{
	size_t len = 0;
	unsigned long e;
	buf[0] = 0;
	while ((e = ERR_get_error()) != 0) {
		char one[256];
		ERR_error_string_n(e, one, sizeof one);
		int w = snprintf(buf + len, cap - len, "%s%s", len ? "; " : "", one);
		if (w < 0 || (size_t)w >= cap - len)
			break;
		len += (size_t)w;
	}
	if (!buf[0])
		snprintf(buf, cap, "unknown TLS error");
	ERR_clear_error();
}

static SSL_CTX *fail(SSL_CTX *ctx, th_err *err, const char *what, const char *file)
{
	char e[400];
	thn_tls_errors(e, sizeof e);
	th_err_set(err, TH_EINVAL, "%s %s: %s", what, file, e);
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *thn_tls_server_ctx(const char *cert, const char *key,
			    const char *client_ca, th_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return fail(NULL, err, "TLS", "context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return fail(ctx, err, "TLS certificate", cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return fail(ctx, err, "TLS key", key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return fail(ctx, err, "TLS key does not match the certificate:", key);
	if (client_ca) {
		if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1)
			return fail(ctx, err, "TLS client CA", client_ca);
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   NULL);
	}
	return ctx;
}

SSL_CTX *thn_tls_client_ctx(const char *ca, const char *cert, const char *key,
			    th_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return fail(NULL, err, "TLS", "context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (ca) {
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
			return fail(ctx, err, "TLS CA", ca);
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		return fail(ctx, err, "TLS", "system CA store");
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((cert != NULL) != (key != NULL)) {
		th_err_set(err, TH_EINVAL, "a client certificate needs both --tls-cert and --tls-key");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
			return fail(ctx, err, "TLS certificate", cert);
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
			return fail(ctx, err, "TLS key", key);
		if (SSL_CTX_check_private_key(ctx) != 1)
			return fail(ctx, err, "TLS key does not match the certificate:", key);
	}
	return ctx;
}
