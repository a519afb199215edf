// Gzip each built asset once, at build time (level 9), so the gateway serves the .gz to browsers that
// take it without compressing on every request: the first load is about a quarter of the raw bytes.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (/\.(js|css|html|svg|json)$/.test(name)) {
      const raw = readFileSync(path)
      const packed = gzipSync(raw, { level: 9 })
      if (packed.length < raw.length) writeFileSync(`${path}.gz`, packed)
    }
  }
}
walk(new URL('../dist', import.meta.url).pathname)
