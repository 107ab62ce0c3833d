// Reads Parquet files with hyparquet (JavaScript, neither Go nor C++) and
// prints, per file, one JSON line: its metadata and every cell in the
// canonical text of readback.go (NULL, s:, i:, f:<IEEE bits>, b:, t:<ms>,
// x:<hex>). Usage: node hyparquet.mjs NODE_MODULES FILE...
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [mods, ...files] = process.argv.slice(2)
const load = (p) => import(pathToFileURL(join(mods, p)).href)
const { parquetMetadata, parquetReadObjects } = await load('hyparquet/src/index.js')
const { compressors } = await load('hyparquet-compressors/src/index.js')

const hex = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex')
const f64 = new DataView(new ArrayBuffer(8))

function cell(v, type) {
  if (v === null || v === undefined) return 'NULL'
  if (typeof v === 'string') return 's:' + v
  if (typeof v === 'boolean') return 'b:' + v
  if (typeof v === 'bigint') return 'i:' + v.toString()
  if (v instanceof Date) return 't:' + v.getTime()
  if (v instanceof Uint8Array) return 'x:' + hex(v)
  if (typeof v === 'number') {
    if (type === 'DOUBLE' || type === 'FLOAT') {
      f64.setFloat64(0, v)
      return 'f:' + f64.getBigUint64(0).toString(16).padStart(16, '0')
    }
    return 'i:' + v
  }
  throw new Error(`unexpected value ${typeof v}: ${v}`)
}

for (const path of files) {
  const buf = readFileSync(path)
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
  const md = parquetMetadata(file)
  const leaves = md.schema.slice(1)
  const columns = leaves.map((s) => s.name)
  const types = leaves.map((s) => s.type)
  const objs = await parquetReadObjects({ file, metadata: md, compressors, utf8: false })
  const rows = objs.map((o) => columns.map((c, i) => cell(o[c], types[i])))
  const chunks = md.row_groups.map((rg) => rg.columns.map((c) => (c.meta_data.path_in_schema || []).join('.')))
  process.stdout.write(JSON.stringify({ path, num_rows: Number(md.num_rows), columns, chunks, rows }) + '\n')
}
