package tcp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// nodeTLS returns a mutual-TLS config for a node on 127.0.0.1 whose
// certificate ca signs and which trusts trust.
func (ca *testCA) nodeTLS(t *testing.T, serial int64, trust *x509.CertPool) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "node"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      trust,
		ClientCAs:    trust,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newCA(t, "replog test CA")
	nodes := cluster(t, 2, func(c *Config) { c.TLS = ca.nodeTLS(t, int64(c.ID)+1, ca.pool) })
	ctx := ctxT(t)
	for seq := range uint64(100) {
		mustSend(t, nodes[1], 2, seq)
		mustSend(t, nodes[2], 1, seq)
	}
	if err := nodes[2].rec.WaitFor(ctx, 1, 99); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].rec.WaitFor(ctx, 2, 99); err != nil {
		t.Fatal(err)
	}
}

func TestTLSRefusesForeignCertificate(t *testing.T) {
	ca, other := newCA(t, "replog test CA"), newCA(t, "another CA")
	lnA, lnD := listen(t), listen(t)
	peers := map[uint64]string{1: lnD.Addr().String(), 2: lnA.Addr().String()}
	acfg := testConfig(2, lnA, peers, newLogSink())
	acfg.TLS = ca.nodeTLS(t, 2, ca.pool)
	acceptor := startNode(t, acfg)
	// The dialler trusts the acceptor's CA but its own certificate comes
	// from elsewhere.
	dcfg := testConfig(1, lnD, peers, newLogSink())
	dcfg.TLS = other.nodeTLS(t, 3, ca.pool)
	dialler := startNode(t, dcfg)
	mustSend(t, dialler, 2, 1)
	ctx := ctxT(t)
	if err := acceptor.log.waitFor(ctx, "refused", "TLS"); err != nil {
		t.Fatal(err)
	}
	if err := dialler.log.waitFor(ctx, "handshake with peer failed", "tls: "); err != nil {
		t.Fatal(err)
	}
	if a := acceptor.Stats(); a.Connects != 0 || a.Received != 0 {
		t.Fatalf("acceptor stats %+v", a)
	}
}

// closeConn gives a TLS connection up at once, without the close_notify
// alert that tls.Conn.Close writes with a 5 s deadline: with a peer that
// does not read, that held a Transport's Close (and a goroutine past it)
// for 5 s per connection.
func TestCloseConnSkipsCloseNotify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, "replog test CA")
		a, b := net.Pipe() // unbuffered: a write waits for the other side to read
		ccfg := ca.nodeTLS(t, 2, ca.pool)
		ccfg.ServerName = "127.0.0.1"
		client := tls.Client(a, ccfg)
		server := tls.Server(b, ca.nodeTLS(t, 3, ca.pool))
		errc := make(chan error, 1)
		go func() { errc <- server.Handshake() }()
		if err := client.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// The server reads no more: tls.Conn.Close would wait 5 s.
		start := time.Now()
		if err := closeConn(client); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("closeConn took %v", d)
		}
		if _, err := server.Read(make([]byte, 1)); err == nil {
			t.Fatal("the peer read from a closed connection")
		}
		server.Close()
	})
}
