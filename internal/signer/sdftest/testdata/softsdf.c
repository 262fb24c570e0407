/*
 * softsdf: a soft cipher machine behind the GM/T 0018-2012 SDF interface,
 * over OpenSSL 3, for the tests of ceb179's sdf signer. It is built by the
 * tests (package sdftest) into a temporary folder and loaded by path, as a
 * vendor's libswsds.so is.
 *
 * The library reads softsdf.conf in its own folder at SDF_OpenDevice:
 *
 *   password 12345678        the private-key access password (one for all keys)
 *   serial   SOFTSDF000000001 DeviceSerial in SDF_GetDeviceInfo
 *   ecc 1 /path/sm2.pem       an SM2 signing key (PKCS#8 PEM) at ECC index 1
 *   rsa 1 /path/rsa.pem       an RSA key at RSA index 1
 *   rate 2000                 at most this many signatures a second, all sessions together (0: no limit)
 *   field 64                  ECCref field size: 64 (ECCref_MAX_BITS 512) or 32 (256)
 *   wrongcode 0x01000018      what a wrong password answers (default SDR_PRKRERR)
 *   maxwrong 3                wrong passwords in a row after which the key locks
 *
 * Every SDF_GetPrivateKeyAccessRight call that reaches the password check
 * is appended to softsdf.log before the call answers ("access <index>
 * ok|wrong|locked pw=<FNV-1a of the password> answer=<code>|hang"), so
 * that the tests count the passwords the device saw, across processes and
 * reloads.
 * The run of wrong passwords is kept in softsdf.tries: a locked key stays
 * locked across processes.
 *
 * softsdf.ctl, re-read whenever it changes, makes the device misbehave:
 *
 *   fail <function> <code> [count]   the next count calls (all when omitted)
 *                                    answer code, after doing their work: a
 *                                    password is checked and counted first
 *   hang <function>                  calls do their work, then block until
 *                                    the line is removed
 *   corrupt <function> [count]       the next count signatures (all when
 *                                    omitted) come back with a bit flipped
 *
 * A failure with SDR_COMMFAIL, SDR_HARDFAIL or SDR_OPENSESSION kills the
 * session: every later call on it answers SDR_OPENSESSION. Closing the
 * device while a call is held by a hang is logged
 * ("close-device-under-a-call"): a vendor's library could crash.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define SDR_OK 0x0
#define SDR_BASE 0x01000000
#define SDR_UNKNOWERR (SDR_BASE + 0x01)
#define SDR_NOTSUPPORT (SDR_BASE + 0x02)
#define SDR_COMMFAIL (SDR_BASE + 0x03)
#define SDR_HARDFAIL (SDR_BASE + 0x04)
#define SDR_OPENDEVICE (SDR_BASE + 0x05)
#define SDR_OPENSESSION (SDR_BASE + 0x06)
#define SDR_PARDENY (SDR_BASE + 0x07)
#define SDR_KEYNOTEXIST (SDR_BASE + 0x08)
#define SDR_SIGNERR (SDR_BASE + 0x0D)
#define SDR_STEPERR (SDR_BASE + 0x10)
#define SDR_PRKRERR (SDR_BASE + 0x18)
#define SDR_INARGERR (SDR_BASE + 0x1D)
#define SDR_OUTARGERR (SDR_BASE + 0x1E)

#define MAX_KEYS 16
#define MAX_SESSIONS 512
#define MAX_RULES 32
#define RSA_FIELD 256

#define EXPORT __attribute__((visibility("default")))

struct key {
	unsigned int index;
	EVP_PKEY *pkey;
};

struct session {
	int used;
	int dead;
	unsigned char rights[MAX_KEYS + 1]; /* access right per key index */
};

struct rule {
	char fn[64];
	unsigned int code;
	long remaining; /* -1: every call */
	int hang;
	int corrupt;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int opened;
static char dir[4096];
static char password[256];
static size_t password_len;
static char serial[17] = "SOFTSDF000000001";
static struct key ecc_keys[MAX_KEYS], rsa_keys[MAX_KEYS];
static int n_ecc, n_rsa;
static double rate;
static int field = 64;
static unsigned int wrong_code = SDR_PRKRERR;
static int max_wrong = 3;
static struct session sessions[MAX_SESSIONS];
static char device_marker; /* the device handle points here */

static int calls_held; /* calls blocked in hang() */
static struct rule rules[MAX_RULES];
static int n_rules;
static struct stat ctl_stat;

static pthread_mutex_t pace_mu = PTHREAD_MUTEX_INITIALIZER;
static struct timespec next_slot;

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* find_dir sets dir to the folder this library was loaded from. */
static int find_dir(void)
{
	Dl_info info;
	char *slash;
	if (!dladdr((void *)find_dir, &info) || info.dli_fname == NULL)
		return 0;
	snprintf(dir, sizeof dir, "%s", info.dli_fname);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		*slash = 0;
	return 1;
}

static EVP_PKEY *read_key(const char *path)
{
	EVP_PKEY *k = NULL;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static void free_keys(void)
{
	int i;
	for (i = 0; i < n_ecc; i++)
		EVP_PKEY_free(ecc_keys[i].pkey);
	for (i = 0; i < n_rsa; i++)
		EVP_PKEY_free(rsa_keys[i].pkey);
	n_ecc = n_rsa = 0;
}

/* read_conf loads softsdf.conf; 0 when it is missing or wrong. */
static int read_conf(void)
{
	char path[4200], line[4400], word[32], arg[4200];
	unsigned int index;
	FILE *f;
	int ok = 1;

	path_of(path, sizeof path, "softsdf.conf");
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (sscanf(line, "%31s", word) != 1)
			continue;
		if (strcmp(word, "password") == 0 && sscanf(line, "%*s %255s", password) == 1) {
			password_len = strlen(password);
		} else if (strcmp(word, "serial") == 0) {
			sscanf(line, "%*s %16s", serial);
		} else if ((strcmp(word, "ecc") == 0 || strcmp(word, "rsa") == 0) &&
			   sscanf(line, "%*s %u %4199s", &index, arg) == 2 && index <= MAX_KEYS) {
			struct key *k = word[0] == 'e' ? &ecc_keys[n_ecc] : &rsa_keys[n_rsa];
			if ((word[0] == 'e' ? n_ecc : n_rsa) >= MAX_KEYS || (k->pkey = read_key(arg)) == NULL) {
				ok = 0;
				continue;
			}
			k->index = index;
			if (word[0] == 'e') {
				if (!EVP_PKEY_is_a(k->pkey, "SM2")) {
					EVP_PKEY_free(k->pkey);
					ok = 0;
					continue;
				}
				n_ecc++;
			} else {
				n_rsa++;
			}
		} else if (strcmp(word, "rate") == 0) {
			sscanf(line, "%*s %lf", &rate);
		} else if (strcmp(word, "field") == 0) {
			sscanf(line, "%*s %d", &field);
		} else if (strcmp(word, "wrongcode") == 0) {
			sscanf(line, "%*s %i", (int *)&wrong_code);
		} else if (strcmp(word, "maxwrong") == 0) {
			sscanf(line, "%*s %d", &max_wrong);
		}
	}
	fclose(f);
	if (field != 64 && field != 32)
		ok = 0;
	return ok;
}

/* load_control re-reads softsdf.ctl when it changed; mu is held. */
static void load_control(void)
{
	char path[4200], line[256], word[16];
	struct stat st;
	FILE *f;

	path_of(path, sizeof path, "softsdf.ctl");
	if (stat(path, &st) != 0) {
		n_rules = 0;
		memset(&ctl_stat, 0, sizeof ctl_stat);
		return;
	}
	if (st.st_ino == ctl_stat.st_ino && st.st_size == ctl_stat.st_size &&
	    st.st_mtim.tv_sec == ctl_stat.st_mtim.tv_sec && st.st_mtim.tv_nsec == ctl_stat.st_mtim.tv_nsec)
		return;
	ctl_stat = st;
	n_rules = 0;
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (n_rules < MAX_RULES && fgets(line, sizeof line, f)) {
		struct rule *r = &rules[n_rules];
		memset(r, 0, sizeof *r);
		r->remaining = -1;
		if (sscanf(line, "%15s %63s", word, r->fn) != 2)
			continue;
		if (strcmp(word, "hang") == 0) {
			r->hang = 1;
			n_rules++;
		} else if (strcmp(word, "corrupt") == 0) {
			r->corrupt = 1;
			sscanf(line, "%*s %*s %ld", &r->remaining);
			n_rules++;
		} else if (strcmp(word, "fail") == 0 && sscanf(line, "%*s %*s %i %ld", (int *)&r->code, &r->remaining) >= 1) {
			n_rules++;
		}
	}
	fclose(f);
}

/* fault returns the code the call fn must answer after its work (SDR_OK:
 * none), consuming one use of a counted rule; mu is held. */
static unsigned int fault(const char *fn)
{
	int i;
	load_control();
	for (i = 0; i < n_rules; i++) {
		struct rule *r = &rules[i];
		if (r->hang || r->corrupt || strcmp(r->fn, fn) != 0 || r->remaining == 0)
			continue;
		if (r->remaining > 0)
			r->remaining--;
		return r->code;
	}
	return SDR_OK;
}

/* corrupting says whether the output of this call of fn must be spoilt,
 * consuming one use of a counted rule; mu is held. */
static int corrupting(const char *fn)
{
	int i;
	load_control();
	for (i = 0; i < n_rules; i++) {
		struct rule *r = &rules[i];
		if (!r->corrupt || strcmp(r->fn, fn) != 0 || r->remaining == 0)
			continue;
		if (r->remaining > 0)
			r->remaining--;
		return 1;
	}
	return 0;
}

/* hanging says whether softsdf.ctl holds "hang fn"; mu is held. */
static int hanging(const char *fn)
{
	int i;
	load_control();
	for (i = 0; i < n_rules; i++)
		if (rules[i].hang && strcmp(rules[i].fn, fn) == 0)
			return 1;
	return 0;
}

/* hang blocks while softsdf.ctl holds "hang fn"; mu is held and is
 * released while waiting. */
static void hang(const char *fn)
{
	if (!hanging(fn))
		return;
	calls_held++;
	while (hanging(fn)) {
		pthread_mutex_unlock(&mu);
		usleep(10000);
		pthread_mutex_lock(&mu);
	}
	calls_held--;
}

/* finish ends a call on session s (may be NULL): the control file's fault
 * for fn replaces code, device failures kill the session, and a hang rule
 * holds the answer back. mu is held and released. */
static int finish(const char *fn, struct session *s, unsigned int code)
{
	unsigned int f = fault(fn);
	if (f != SDR_OK)
		code = f;
	if (s != NULL && (code == SDR_COMMFAIL || code == SDR_HARDFAIL || code == SDR_OPENSESSION))
		s->dead = 1;
	hang(fn);
	pthread_mutex_unlock(&mu);
	return (int)code;
}

/* session returns the live session behind h, or NULL; mu is held. */
static struct session *session_of(void *h)
{
	struct session *s = (struct session *)h;
	if (s < sessions || s >= sessions + MAX_SESSIONS || ((char *)s - (char *)sessions) % sizeof *s != 0)
		return NULL;
	if (!s->used || s->dead || !opened)
		return NULL;
	return s;
}

static EVP_PKEY *key_of(struct key *keys, int n, unsigned int index)
{
	int i;
	for (i = 0; i < n; i++)
		if (keys[i].index == index)
			return keys[i].pkey;
	return NULL;
}

/* pace waits for this signature's slot under the rate limit. */
static void pace(void)
{
	struct timespec now, slot;
	long step;
	if (rate <= 0)
		return;
	step = (long)(1e9 / rate);
	pthread_mutex_lock(&pace_mu);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (next_slot.tv_sec < now.tv_sec || (next_slot.tv_sec == now.tv_sec && next_slot.tv_nsec < now.tv_nsec))
		next_slot = now;
	slot = next_slot;
	next_slot.tv_nsec += step;
	while (next_slot.tv_nsec >= 1000000000L) {
		next_slot.tv_nsec -= 1000000000L;
		next_slot.tv_sec++;
	}
	pthread_mutex_unlock(&pace_mu);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &slot, NULL) == EINTR)
		;
}

/* log_access appends one access-right call to softsdf.log: the key
 * index, the device's verdict on the password, an FNV-1a fingerprint of
 * the password, and the code the call answers ("hang" when it is held). */
static void log_access(unsigned int index, const char *verdict, const unsigned char *pw, unsigned int n,
		       unsigned int code, int held)
{
	char path[4200];
	uint32_t h = 2166136261u;
	unsigned int i;
	FILE *f;
	for (i = 0; pw != NULL && i < n; i++) {
		h ^= pw[i];
		h *= 16777619u;
	}
	path_of(path, sizeof path, "softsdf.log");
	f = fopen(path, "a");
	if (f == NULL)
		return;
	if (held)
		fprintf(f, "access %u %s pw=%08x answer=hang\n", index, verdict, h);
	else
		fprintf(f, "access %u %s pw=%08x answer=%#x\n", index, verdict, h, code);
	fclose(f);
}

/* log_line appends a line to softsdf.log. */
static void log_line(const char *line)
{
	char path[4200];
	FILE *f;
	path_of(path, sizeof path, "softsdf.log");
	f = fopen(path, "a");
	if (f == NULL)
		return;
	fprintf(f, "%s\n", line);
	fclose(f);
}

static int read_tries(void)
{
	char path[4200];
	int n = 0;
	FILE *f;
	path_of(path, sizeof path, "softsdf.tries");
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%d", &n) != 1)
		n = 0;
	fclose(f);
	return n;
}

static void write_tries(int n)
{
	char path[4200];
	FILE *f;
	path_of(path, sizeof path, "softsdf.tries");
	f = fopen(path, "w");
	if (f == NULL)
		return;
	fprintf(f, "%d\n", n);
	fclose(f);
}

/* put_field writes v right-aligned in a field of size bytes at out. */
static void put_field(unsigned char *out, const BIGNUM *v, int size)
{
	memset(out, 0, (size_t)size);
	BN_bn2binpad(v, out + size - 32, 32);
}

EXPORT int SDF_OpenDevice(void **phDeviceHandle)
{
	if (phDeviceHandle == NULL)
		return SDR_INARGERR;
	pthread_mutex_lock(&mu);
	if (opened) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENDEVICE;
	}
	if (!find_dir() || !read_conf()) {
		free_keys();
		pthread_mutex_unlock(&mu);
		return SDR_OPENDEVICE;
	}
	memset(sessions, 0, sizeof sessions);
	opened = 1;
	*phDeviceHandle = &device_marker;
	return finish("SDF_OpenDevice", NULL, SDR_OK);
}

EXPORT int SDF_CloseDevice(void *hDeviceHandle)
{
	pthread_mutex_lock(&mu);
	if (!opened || hDeviceHandle != &device_marker) {
		pthread_mutex_unlock(&mu);
		return SDR_INARGERR;
	}
	/* A vendor library may crash here; this one says so in its log. */
	if (calls_held > 0)
		log_line("close-device-under-a-call");
	opened = 0;
	memset(sessions, 0, sizeof sessions);
	free_keys();
	return finish("SDF_CloseDevice", NULL, SDR_OK);
}

EXPORT int SDF_OpenSession(void *hDeviceHandle, void **phSessionHandle)
{
	unsigned int code;
	int i;
	pthread_mutex_lock(&mu);
	if (!opened || hDeviceHandle != &device_marker || phSessionHandle == NULL) {
		pthread_mutex_unlock(&mu);
		return SDR_INARGERR;
	}
	for (i = 0; i < MAX_SESSIONS; i++)
		if (!sessions[i].used)
			break;
	if (i == MAX_SESSIONS) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	code = fault("SDF_OpenSession");
	if (code == SDR_OK) {
		/* A session that failed to open is no session. */
		memset(&sessions[i], 0, sizeof sessions[i]);
		sessions[i].used = 1;
		*phSessionHandle = &sessions[i];
	}
	hang("SDF_OpenSession");
	pthread_mutex_unlock(&mu);
	return (int)code;
}

EXPORT int SDF_CloseSession(void *hSessionHandle)
{
	struct session *s = (struct session *)hSessionHandle;
	pthread_mutex_lock(&mu);
	if (s < sessions || s >= sessions + MAX_SESSIONS || !s->used) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	memset(s, 0, sizeof *s);
	return finish("SDF_CloseSession", NULL, SDR_OK);
}

EXPORT int SDF_GetDeviceInfo(void *hSessionHandle, unsigned char *info)
{
	struct session *s;
	unsigned int v[7] = {1, 1, 0x00020100 | 0x00010000, 256, 0x00000400, 0x00000001, 65536};
	pthread_mutex_lock(&mu);
	if ((s = session_of(hSessionHandle)) == NULL) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	if (info == NULL)
		return finish("SDF_GetDeviceInfo", s, SDR_INARGERR);
	/* GM/T 0018-2012 DEVICEINFO: IssuerName[40], DeviceName[16],
	 * DeviceSerial[16], then seven unsigned ints. */
	memset(info, 0, 100);
	memcpy(info, "ceb179 test soft SDF", 20);
	memcpy(info + 40, "softsdf", 7);
	memcpy(info + 56, serial, strlen(serial));
	memcpy(info + 72, v, sizeof v);
	return finish("SDF_GetDeviceInfo", s, SDR_OK);
}

/* finish_access ends an access-right call that reached the password
 * check, logging it with the code it answers; mu is held and released. */
static int finish_access(struct session *s, unsigned int index, const char *verdict, const unsigned char *pw,
			 unsigned int n, unsigned int code)
{
	const char *fn = "SDF_GetPrivateKeyAccessRight";
	unsigned int f = fault(fn);
	if (f != SDR_OK)
		code = f;
	if (code == SDR_COMMFAIL || code == SDR_HARDFAIL || code == SDR_OPENSESSION)
		s->dead = 1;
	log_access(index, verdict, pw, n, code, hanging(fn));
	hang(fn);
	pthread_mutex_unlock(&mu);
	return (int)code;
}

EXPORT int SDF_GetPrivateKeyAccessRight(void *hSessionHandle, unsigned int uiKeyIndex,
					unsigned char *pucPassword, unsigned int uiPwdLength)
{
	struct session *s;
	int tries;
	pthread_mutex_lock(&mu);
	if ((s = session_of(hSessionHandle)) == NULL) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	if (pucPassword == NULL || uiKeyIndex > MAX_KEYS)
		return finish("SDF_GetPrivateKeyAccessRight", s, SDR_INARGERR);
	if (key_of(ecc_keys, n_ecc, uiKeyIndex) == NULL && key_of(rsa_keys, n_rsa, uiKeyIndex) == NULL)
		return finish("SDF_GetPrivateKeyAccessRight", s, SDR_KEYNOTEXIST);
	tries = read_tries();
	if (tries >= max_wrong)
		return finish_access(s, uiKeyIndex, "locked", pucPassword, uiPwdLength, wrong_code);
	if (uiPwdLength != password_len || memcmp(pucPassword, password, password_len) != 0) {
		write_tries(tries + 1);
		return finish_access(s, uiKeyIndex, "wrong", pucPassword, uiPwdLength, wrong_code);
	}
	if (tries != 0)
		write_tries(0);
	s->rights[uiKeyIndex] = 1;
	return finish_access(s, uiKeyIndex, "ok", pucPassword, uiPwdLength, SDR_OK);
}

EXPORT int SDF_ReleasePrivateKeyAccessRight(void *hSessionHandle, unsigned int uiKeyIndex)
{
	struct session *s;
	pthread_mutex_lock(&mu);
	if ((s = session_of(hSessionHandle)) == NULL) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	if (uiKeyIndex > MAX_KEYS)
		return finish("SDF_ReleasePrivateKeyAccessRight", s, SDR_INARGERR);
	s->rights[uiKeyIndex] = 0;
	return finish("SDF_ReleasePrivateKeyAccessRight", s, SDR_OK);
}

EXPORT int SDF_ExportSignPublicKey_ECC(void *hSessionHandle, unsigned int uiKeyIndex, unsigned char *pub)
{
	struct session *s;
	EVP_PKEY *k;
	unsigned char point[65];
	size_t n = 0;
	unsigned int bits = 256;
	BIGNUM *x, *y;
	pthread_mutex_lock(&mu);
	if ((s = session_of(hSessionHandle)) == NULL) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	if ((k = key_of(ecc_keys, n_ecc, uiKeyIndex)) == NULL)
		return finish("SDF_ExportSignPublicKey_ECC", s, SDR_KEYNOTEXIST);
	if (pub == NULL || !EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &n) || n != 65)
		return finish("SDF_ExportSignPublicKey_ECC", s, SDR_INARGERR);
	/* ECCrefPublicKey: bits, x[field], y[field], right-aligned. */
	x = BN_bin2bn(point + 1, 32, NULL);
	y = BN_bin2bn(point + 33, 32, NULL);
	memcpy(pub, &bits, 4);
	put_field(pub + 4, x, field);
	put_field(pub + 4 + field, y, field);
	BN_free(x);
	BN_free(y);
	return finish("SDF_ExportSignPublicKey_ECC", s, SDR_OK);
}

EXPORT int SDF_ExportSignPublicKey_RSA(void *hSessionHandle, unsigned int uiKeyIndex, unsigned char *pub)
{
	struct session *s;
	EVP_PKEY *k;
	BIGNUM *n = NULL, *e = NULL;
	unsigned int bits;
	pthread_mutex_lock(&mu);
	if ((s = session_of(hSessionHandle)) == NULL) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	if ((k = key_of(rsa_keys, n_rsa, uiKeyIndex)) == NULL)
		return finish("SDF_ExportSignPublicKey_RSA", s, SDR_KEYNOTEXIST);
	if (pub == NULL || !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e)) {
		BN_free(n);
		return finish("SDF_ExportSignPublicKey_RSA", s, SDR_INARGERR);
	}
	/* RSArefPublicKey: bits, m[256], e[256], right-aligned. */
	bits = (unsigned int)BN_num_bits(n);
	memset(pub, 0, 4 + 2 * RSA_FIELD);
	memcpy(pub, &bits, 4);
	BN_bn2binpad(n, pub + 4, RSA_FIELD);
	BN_bn2binpad(e, pub + 4 + RSA_FIELD, RSA_FIELD);
	BN_free(n);
	BN_free(e);
	return finish("SDF_ExportSignPublicKey_RSA", s, SDR_OK);
}

EXPORT int SDF_InternalSign_ECC(void *hSessionHandle, unsigned int uiISKIndex, unsigned char *pucData,
				unsigned int uiDataLength, unsigned char *sig)
{
	struct session *s;
	EVP_PKEY *k;
	EVP_PKEY_CTX *c;
	unsigned char der[80];
	const unsigned char *p = der;
	size_t n = sizeof der;
	ECDSA_SIG *es;
	const BIGNUM *r, *ss;
	unsigned int code = SDR_OK;

	pthread_mutex_lock(&mu);
	if ((s = session_of(hSessionHandle)) == NULL) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	if ((k = key_of(ecc_keys, n_ecc, uiISKIndex)) == NULL)
		return finish("SDF_InternalSign_ECC", s, SDR_KEYNOTEXIST);
	if (!s->rights[uiISKIndex])
		return finish("SDF_InternalSign_ECC", s, SDR_PARDENY);
	if (pucData == NULL || uiDataLength != 32 || sig == NULL)
		return finish("SDF_InternalSign_ECC", s, SDR_INARGERR);
	pthread_mutex_unlock(&mu);

	pace();
	/* The SM2 signature of the digest e itself: the caller computed
	 * e = SM3(Z || M). */
	c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (c == NULL || EVP_PKEY_sign_init(c) <= 0 || EVP_PKEY_sign(c, der, &n, pucData, 32) <= 0 ||
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)n)) == NULL) {
		code = SDR_SIGNERR;
	} else {
		ECDSA_SIG_get0(es, &r, &ss);
		put_field(sig, r, field);
		put_field(sig + field, ss, field);
		ECDSA_SIG_free(es);
	}
	EVP_PKEY_CTX_free(c);

	pthread_mutex_lock(&mu);
	if (code == SDR_OK && corrupting("SDF_InternalSign_ECC"))
		sig[field - 1] ^= 1;
	return finish("SDF_InternalSign_ECC", s, code);
}

EXPORT int SDF_InternalPrivateKeyOperation_RSA(void *hSessionHandle, unsigned int uiKeyIndex,
					       unsigned char *pucDataInput, unsigned int uiInputLength,
					       unsigned char *pucDataOutput, unsigned int *puiOutputLength)
{
	struct session *s;
	EVP_PKEY *k;
	EVP_PKEY_CTX *c;
	size_t n;
	unsigned int code = SDR_OK;

	pthread_mutex_lock(&mu);
	if ((s = session_of(hSessionHandle)) == NULL) {
		pthread_mutex_unlock(&mu);
		return SDR_OPENSESSION;
	}
	if ((k = key_of(rsa_keys, n_rsa, uiKeyIndex)) == NULL)
		return finish("SDF_InternalPrivateKeyOperation_RSA", s, SDR_KEYNOTEXIST);
	if (!s->rights[uiKeyIndex])
		return finish("SDF_InternalPrivateKeyOperation_RSA", s, SDR_PARDENY);
	if (pucDataInput == NULL || pucDataOutput == NULL || puiOutputLength == NULL ||
	    uiInputLength != (unsigned int)EVP_PKEY_get_size(k))
		return finish("SDF_InternalPrivateKeyOperation_RSA", s, SDR_INARGERR);
	pthread_mutex_unlock(&mu);

	pace();
	/* The raw private-key operation: the caller built the PKCS#1 v1.5
	 * block around the DigestInfo. */
	n = uiInputLength;
	c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	if (c == NULL || EVP_PKEY_sign_init(c) <= 0 || EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING) <= 0 ||
	    EVP_PKEY_sign(c, pucDataOutput, &n, pucDataInput, uiInputLength) <= 0)
		code = SDR_SIGNERR;
	else
		*puiOutputLength = (unsigned int)n;
	EVP_PKEY_CTX_free(c);

	pthread_mutex_lock(&mu);
	if (code == SDR_OK && corrupting("SDF_InternalPrivateKeyOperation_RSA"))
		pucDataOutput[n - 1] ^= 1;
	return finish("SDF_InternalPrivateKeyOperation_RSA", s, code);
}
