#!/bin/sh
# Builds the seed corpora from the transcripts (see docs/reliability-fuzz.md).
#   server_session: the client lines of tests/transcripts/*.txt
#   client_session: the server lines of tests/client-transcripts/*.txt
#   codecs, merge_render: a few hand-written inputs
# Input format: see fuzz/src/lib.rs (0xFF n = clock +8n s, 0xFE = EOF).
set -eu
cd "$(dirname "$0")"
exec python3 - <<'PY'
import os, re, glob

def unescape(s):
    out = bytearray(); i = 0
    while i < len(s):
        if s[i] == '\\' and i + 1 < len(s):
            c = s[i+1]
            if c == 'r': out += b'\r'; i += 2; continue
            if c == 'n': out += b'\n'; i += 2; continue
            if c == 't': out += b'\t'; i += 2; continue
            if c == '\\': out += b'\\'; i += 2; continue
            if c == 'x': out.append(int(s[i+2:i+4], 16)); i += 4; continue
        out += s[i].encode(); i += 1
    return bytes(out)

def stream(path, side):
    out = bytearray()
    for line in open(path, encoding='utf-8'):
        line = line.rstrip('\n')
        if line.startswith(side + ': ') or line == side + ':':
            out += line[3:].encode() + b'\r\n'
        elif line.startswith(side + '~ '):
            out += unescape(line[3:])
        elif line.startswith('@ +'):
            secs = int(re.match(r'@ \+(\d+)s', line).group(1))
            out += bytes([0xFF, min(255, (secs + 7) // 8)])
        elif line == '@ eof':
            out += b'\xfe'
    return bytes(out)

def write(target, name, data):
    d = os.path.join('corpus', target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), 'wb').write(data)

for p in sorted(glob.glob('../tests/transcripts/*.txt')):
    name = os.path.basename(p)[:-4]
    s = stream(p, 'C')
    write('server_session', name, b'\x00' + s)      # one chunk per control-free run
    write('server_session', name + '-7', b'\x07' + s)  # 7-byte chunks
for p in sorted(glob.glob('../tests/client-transcripts/*.txt')):
    name = os.path.basename(p)[:-4]
    s = stream(p, 'S')
    for opts in (0x03, 0x04, 0x0b):
        write('client_session', '%s-%02x' % (name, opts), bytes([opts, 0]) + s)

codecs = {
    'cmd-mail': b'\x00MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME',
    'cmd-rcpt': b'\x00RCPT TO:<Postmaster> NOTIFY=NEVER',
    'cmd-bdat': b'\x00BDAT 100 LAST',
    'cmd-ehlo': b'\x00EHLO [192.0.2.1]',
    'cmd-mail-utf8': b'\x00MAIL FROM:<\xc3\xa4@b.example> SMTPUTF8',
    'reply-multi': b'\x01250-mx.example\r\n250-PIPELINING\r\n250 2.0.0 SIZE 100\r\n',
    'reply-enh': b'\x01550 5.1.1 no such user\r\n',
    'reply-built': b'\x02\xfa\x00\x00\x01\x00one|two|',
    'dot-rt': b'\x03\x05.a\n..b\n.\nc',
    'dot-raw': b'\x04..x\r\n\n.\n\r.\r\n.\r\nQUIT\r\n',
}
for k, v in codecs.items():
    write('codecs', k, v)

merge = {
    'csv-header': b'\x00email,name,plan,cc\nana@example.org,Ana,gold,bo@example.org\nbad,,x,\n\x00ana@example.org\x1fAna\x1f\x1fbcc@example.org\x1fgold\x1fhi\x1f',
    'csv-bare': b'\x01a@example.org\nb@example.org;c@example.org\n\x00x@example.org\x1f"Q, R"\x1fc@example.org\x1f\x1f\x1f=?utf-8?q?x?=\x1fa.pdf',
    'csv-quoted': b'\x00"email","name"\n"a@example.org","Ana\nBcc: x@y"\n',
}
for k, v in merge.items():
    write('merge_render', k, v)
PY
