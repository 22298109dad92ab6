// oci-image: builds and pushes the OCI images of the project's plugin binaries, without Docker
// or any daemon, on go-containerregistry (the library OpenBao itself pulls plugins with).
//
//	oci-image build -binary PATH -name NAME -version X.Y.Z -source URL -out DIR [-revision REV]
//	    [-file-name F]
//	    Writes an OCI image layout at DIR (replaced if present) holding one linux/amd64 image,
//	    tagged vX.Y.Z: one layer with the file at the image root (mode 0755, owner 0:0, mtime
//	    0), ENTRYPOINT ["/NAME"], labels org.opencontainers.image.{title,version,source,
//	    revision}.
//	    -file-name puts the file at /F instead of /NAME (the tests' "image without the binary").
//	    Prints: "<NAME> v<X.Y.Z> manifest=<digest> size=<bytes> binary-sha256=<hex> <DIR>".
//	oci-image push -layout DIR -tag TAG -to HOST:PORT/REPO:TAG
//	    Pushes the image tagged TAG in the layout to a registry (plain HTTP for loopback, as
//	    OpenBao pulls it). Prints the manifest digest the registry holds.
//	oci-image inspect -layout DIR -tag TAG
//	    Prints what the tests check of an image: "manifest=<digest> binary-sha256=<hex of the
//	    ENTRYPOINT's file in the image, or none> os=<os> arch=<arch> entrypoint=<e>
//	    version=<label> source=<label> files=<paths in the flattened image, comma-separated>".
//
// The build is reproducible: the same binary and flags give the same manifest digest.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const refNameAnnotation = "org.opencontainers.image.ref.name"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2:])
	case "push":
		err = push(os.Args[2:])
	case "inspect":
		err = inspect(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "oci-image %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: oci-image build -binary PATH -name NAME -version X.Y.Z -source URL -out DIR\n"+
		"         [-revision REV] [-file-name F]\n"+
		"       oci-image push -layout DIR -tag TAG -to HOST:PORT/REPO:TAG\n"+
		"       oci-image inspect -layout DIR -tag TAG")
	os.Exit(2)
}

func build(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	binary := fs.String("binary", "", "the plugin binary")
	nameFlag := fs.String("name", "", "the binary's name in the image (ENTRYPOINT /NAME)")
	version := fs.String("version", "", "the plugin's version, without the v (the tag is v<version>)")
	source := fs.String("source", "", "org.opencontainers.image.source label")
	revision := fs.String("revision", "", "org.opencontainers.image.revision label")
	out := fs.String("out", "", "the OCI image layout directory to write")
	fileName := fs.String("file-name", "", "put the file at /F instead of /NAME (test images)")
	fs.Parse(args)
	if *binary == "" || *nameFlag == "" || *version == "" || *out == "" {
		return errors.New("-binary, -name, -version and -out are required")
	}
	if strings.HasPrefix(*version, "v") {
		return fmt.Errorf("-version %q: give it without the v, the tag adds it", *version)
	}
	inImage := *nameFlag
	if *fileName != "" {
		inImage = *fileName
	}
	if strings.Contains(inImage, "/") {
		return fmt.Errorf("%q: the binary goes at the image root, no directories", inImage)
	}
	content, err := os.ReadFile(*binary)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(content)

	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     inImage,
		Mode:     0o755,
		Size:     int64(len(content)),
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	}); err != nil {
		return err
	}
	if _, err := tw.Write(content); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	tarBytes := tarBuf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = "amd64"
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.Entrypoint = []string{"/" + *nameFlag}
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   *nameFlag,
		"org.opencontainers.image.version": *version,
	}
	if *source != "" {
		cfg.Config.Labels["org.opencontainers.image.source"] = *source
	}
	if *revision != "" {
		cfg.Config.Labels["org.opencontainers.image.revision"] = *revision
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}

	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	p, err := layout.Write(*out, empty.Index)
	if err != nil {
		return err
	}
	tag := "v" + *version
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: tag}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	size, err := imageSize(img)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s manifest=%s size=%d binary-sha256=%s %s\n",
		*nameFlag, tag, digest, size, hex.EncodeToString(sum[:]), *out)
	return nil
}

// imageSize: what a pull transfers, manifest + config + compressed layers.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	c, err := img.RawConfigFile()
	if err != nil {
		return 0, err
	}
	total := int64(len(m) + len(c))
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += s
	}
	return total, nil
}

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	dir := fs.String("layout", "", "the OCI image layout directory")
	tag := fs.String("tag", "", "the ref.name of the image in the layout")
	to := fs.String("to", "", "where to push: HOST:PORT/REPO:TAG")
	fs.Parse(args)
	if *dir == "" || *tag == "" || *to == "" {
		return errors.New("-layout, -tag and -to are required")
	}
	img, err := tagged(*dir, *tag)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(*to)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", ref, digest)
	return nil
}

// tagged: the image whose ref.name is tag in the layout at dir.
func tagged(dir, tag string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Annotations[refNameAnnotation] == tag {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image tagged %q in %s", tag, dir)
}

func inspect(args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ExitOnError)
	dir := fs.String("layout", "", "the OCI image layout directory")
	tag := fs.String("tag", "", "the ref.name of the image in the layout")
	fs.Parse(args)
	img, err := tagged(*dir, *tag)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	entry := ""
	if len(cfg.Config.Entrypoint) > 0 {
		entry = cfg.Config.Entrypoint[0]
	}
	want := strings.TrimPrefix(entry, "/")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var files []string
	binSum := "none"
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		files = append(files, h.Name)
		if h.Typeflag == tar.TypeReg && strings.TrimPrefix(h.Name, "/") == want && want != "" {
			hash := sha256.New()
			if _, err := io.Copy(hash, tr); err != nil {
				return err
			}
			binSum = hex.EncodeToString(hash.Sum(nil)) + fmt.Sprintf(" mode=%o", h.Mode)
		}
	}
	fmt.Printf("manifest=%s binary-sha256=%s os=%s arch=%s entrypoint=%s version=%s source=%s files=%s\n",
		digest, binSum, cfg.OS, cfg.Architecture, entry,
		cfg.Config.Labels["org.opencontainers.image.version"],
		cfg.Config.Labels["org.opencontainers.image.source"], strings.Join(files, ","))
	return nil
}
