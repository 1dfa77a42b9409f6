#pragma once

// RAII for the OpenSSL objects hookctl owns, like mime/gmime_ptr.hpp for GMime: one deleter
// template and one alias per type, so no file writes its own `struct XDeleter`.

#include <memory>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace hookctl::util {

// Calls OpenSSL's `Free` (BIO_free, X509_free, EVP_PKEY_free, ...) on the object. Every one of
// them accepts a null pointer.
template <auto Free> struct OpenSslFree {
    template <class T> void operator()(T* object) const { Free(object); }
};

using BioPtr = std::unique_ptr<BIO, OpenSslFree<&BIO_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslFree<&X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<&EVP_PKEY_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslFree<&EVP_MD_CTX_free>>;
using EvpMacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OpenSslFree<&EVP_MAC_CTX_free>>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, OpenSslFree<&EVP_CIPHER_CTX_free>>;
using EvpCipherPtr = std::unique_ptr<EVP_CIPHER, OpenSslFree<&EVP_CIPHER_free>>;
// For a shared_ptr<SSL_CTX> (a server's context outlives reloads while connections hold it).
using SslCtxFree = OpenSslFree<&SSL_CTX_free>;

} // namespace hookctl::util
