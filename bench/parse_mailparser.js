// mailparser's simpleParser over the same files: prints "messages bytes seconds".
// Usage: node parse_mailparser.js REPEAT FILE...   (NODE_PATH points at bench/.scratch)
const fs = require('fs');
const { simpleParser } = require('mailparser');
(async () => {
  const repeat = parseInt(process.argv[2], 10);
  const files = process.argv.slice(3).map((f) => fs.readFileSync(f));
  let messages = 0, bytes = 0;
  const start = process.hrtime.bigint();
  for (let r = 0; r < repeat; r++) {
    for (const raw of files) {
      const parsed = await simpleParser(raw);
      JSON.stringify({ subject: parsed.subject, text: parsed.text, html: parsed.html,
        from: parsed.from && parsed.from.value,
        attachments: parsed.attachments.map((a) => ({ filename: a.filename, size: a.size,
          checksum: a.checksum, contentType: a.contentType })) });
      messages++; bytes += raw.length;
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${messages} ${bytes} ${seconds.toFixed(6)}`);
})();
