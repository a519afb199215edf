// The console's build: served by the gateway under /console/, every asset from the same origin (no CDN).
import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

export default defineConfig({
  base: '/console/',
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    outDir: 'dist',
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        // Element Plus changes rarely: its own chunk stays cached across our releases. ECharts is left
        // to the pages that draw charts (a vendor chunk holding it would load it on every first visit).
        manualChunks(id: string) {
          if (id.includes('node_modules/element-plus') || id.includes('node_modules/@element-plus')) return 'element'
          if (/node_modules\/(echarts|zrender|vue-echarts|tslib)\//.test(id)) return undefined
          if (id.includes('node_modules/')) return 'vendor'
        },
      },
    },
  },
  // A dev server (`npx vite`) in front of any instance's gateway: LINLI_API=http://127.0.0.1:8010 for the district.
  // Several at once each keep their own pre-bundling cache (LINLI_VITE_CACHE).
  cacheDir: process.env.LINLI_VITE_CACHE ?? 'node_modules/.vite',
  server: { proxy: { '/api': process.env.LINLI_API ?? 'http://127.0.0.1:8000' } },
})
