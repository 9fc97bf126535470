//! The wgpu device, its pipelines, a buffer pool, and one submission: upload,
//! a list of dispatches in one compute pass, one read-back.

use crate::shaders::{self, Arithmetic, Kernel};
use hush_core::error::{Error, Result};
use std::fmt;
use std::sync::Mutex;

/// How to open the GPU.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// The arithmetic variant; `None` takes `u64` where the adapter offers
    /// `SHADER_INT64` and limbs elsewhere.
    pub arithmetic: Option<Arithmetic>,
    /// A cap on the bytes bound to one storage binding, below the adapter's
    /// own limit. Tensors above it are split into bound sub-ranges; tests set
    /// a small cap to cover that path with small tensors.
    pub max_binding_bytes: Option<u64>,
    /// Refuse software adapters (lavapipe, SwiftShader, WARP): `auto`
    /// selection sets it, since a CPU-emulated GPU never beats the CPU backend.
    pub hardware_only: bool,
}

/// What adapter was found, for logs and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name (e.g. "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub name: String,
    /// Graphics API: Vulkan, Metal, Dx12, Gl, BrowserWebGpu.
    pub backend: String,
    /// Discrete, integrated, virtual or a CPU (software) adapter.
    pub device_type: String,
    /// A software adapter (lavapipe, SwiftShader, WARP).
    pub software: bool,
    /// The arithmetic variant in use.
    pub arithmetic: Arithmetic,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, {} arithmetic)",
            self.name, self.backend, self.device_type, self.arithmetic
        )
    }
}

/// Work counters: submissions, dispatches and bytes moved each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Queue submissions that were read back.
    pub submissions: u64,
    /// Compute dispatches.
    pub dispatches: u64,
    /// Bytes written to the GPU.
    pub bytes_up: u64,
    /// Bytes read back from the GPU.
    pub bytes_down: u64,
}

/// One compute dispatch: a kernel, its parameter block, three storage
/// bindings (two read, one read-write) and the workgroup counts.
pub(crate) struct Dispatch {
    pub kernel: Kernel,
    pub params: Vec<u32>,
    /// `(buffer index, byte offset, byte size)` of bindings 1, 2 and 3.
    pub bindings: [(usize, u64, u64); 3],
    pub groups: [u32; 3],
}

/// The device and everything built on it once.
pub(crate) struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: Vec<(Kernel, wgpu::ComputePipeline)>,
    pub summary: AdapterSummary,
    /// Largest bound range, in ring elements.
    pub max_bind_elems: usize,
    /// Storage binding offsets must be multiples of this many bytes.
    pub storage_align: u64,
    uniform_align: u64,
    /// Largest buffer, in bytes.
    pub max_buffer_bytes: u64,
    pub max_groups: u32,
    pool: Mutex<Vec<wgpu::Buffer>>,
    stats: Mutex<GpuStats>,
}

fn device_error(what: &str, e: impl fmt::Display) -> Error {
    Error::Device(format!("{what}: {e}"))
}

impl Context {
    pub async fn new(options: &GpuOptions) -> Result<Context> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| device_error("no GPU adapter", e))?;
        let info = adapter.get_info();
        let software = info.device_type == wgpu::DeviceType::Cpu;
        if software && options.hardware_only {
            return Err(Error::Device(format!(
                "the only adapter, {}, is a software one",
                info.name
            )));
        }
        let has_int64 = adapter.features().contains(wgpu::Features::SHADER_INT64);
        let arithmetic = match options.arithmetic {
            None if has_int64 => Arithmetic::U64,
            None => Arithmetic::Limbs,
            Some(Arithmetic::U64) if !has_int64 => {
                return Err(Error::Device(format!(
                    "{} does not offer SHADER_INT64; use the limb arithmetic",
                    info.name
                )));
            }
            Some(a) => a,
        };
        let required_features = match arithmetic {
            Arithmetic::U64 => wgpu::Features::SHADER_INT64,
            Arithmetic::Limbs => wgpu::Features::empty(),
        };
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("hush"),
                required_features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| device_error("the GPU refused a device", e))?;
        // wgpu's default handler panics; errors of Hush's own submissions are
        // caught by error scopes, anything else is logged.
        device.on_uncaptured_error(std::sync::Arc::new(|e: wgpu::Error| {
            tracing::error!("GPU error outside an operation: {e}");
        }));
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            software,
            arithmetic,
        };
        let pipelines = Kernel::ALL
            .iter()
            .map(|&kernel| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("hush kernel"),
                    source: wgpu::ShaderSource::Wgsl(shaders::source(kernel, arithmetic).into()),
                });
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("hush kernel"),
                    layout: None,
                    module: &module,
                    entry_point: Some(Kernel::ENTRY),
                    compilation_options: Default::default(),
                    cache: None,
                });
                (kernel, pipeline)
            })
            .collect();
        let storage_align = u64::from(limits.min_storage_buffer_offset_alignment).max(8);
        let mut bind = limits.max_storage_buffer_binding_size;
        if let Some(cap) = options.max_binding_bytes {
            bind = bind.min(cap);
        }
        // Leave room for aligning a range's start down to `storage_align`;
        // kernels index bound ranges with u32.
        let bind = (bind.saturating_sub(storage_align) / 8).min(1 << 31);
        if bind < 1024 {
            return Err(Error::Device(format!(
                "storage bindings of {} bytes are too small",
                bind * 8
            )));
        }
        Ok(Context {
            device,
            queue,
            pipelines,
            summary,
            max_bind_elems: bind as usize,
            storage_align,
            uniform_align: u64::from(limits.min_uniform_buffer_offset_alignment).max(16),
            max_buffer_bytes: limits.max_buffer_size,
            max_groups: limits.max_compute_workgroups_per_dimension,
            pool: Mutex::new(Vec::new()),
            stats: Mutex::new(GpuStats::default()),
        })
    }

    pub fn stats(&self) -> GpuStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut GpuStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A storage buffer of at least `bytes`, from the pool when one fits.
    fn buffer(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let bytes = bytes.max(8).next_multiple_of(256);
        if bytes > self.max_buffer_bytes {
            return Err(Error::Device(format!(
                "a tensor of {bytes} bytes is larger than the GPU's largest buffer ({} bytes)",
                self.max_buffer_bytes
            )));
        }
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        // The smallest pooled buffer that fits, unless it wastes more than 4×.
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.size() >= bytes && b.size() <= bytes.saturating_mul(4))
            .min_by_key(|(_, b)| b.size())
            .map(|(i, _)| i);
        if let Some(i) = best {
            return Ok(pool.swap_remove(i));
        }
        drop(pool);
        // Round up to a power of two (up to the device maximum) so that
        // buffers are reused across layers of slightly different sizes.
        let size = bytes
            .next_power_of_two()
            .min(self.max_buffer_bytes)
            .max(bytes);
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hush tensor"),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// Returns buffers to the pool, keeping at most 32 of them.
    fn recycle(&self, buffers: Vec<wgpu::Buffer>) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.extend(buffers);
        if pool.len() > 32 {
            pool.sort_by_key(|b| std::cmp::Reverse(b.size()));
            pool.truncate(32);
        }
    }

    /// Runs `dispatches` over buffers holding `inputs` and one output buffer
    /// of `out_len` elements (index `inputs.len()`), and reads the output back.
    pub async fn run(
        &self,
        inputs: &[&[u64]],
        out_len: usize,
        dispatches: &[Dispatch],
    ) -> Result<Vec<u64>> {
        // Errors of this submission surface here as values, not through
        // wgpu's default handler (which panics). The scopes are popped before
        // any await: they belong to this thread.
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let submitted = self.submit(inputs, out_len, dispatches);
        let memory = memory.pop();
        let validation = validation.pop();
        let (buffers, staging) = submitted?;
        if let Some(e) = memory.await {
            return Err(device_error("the GPU ran out of memory", e));
        }
        if let Some(e) = validation.await {
            return Err(device_error("the GPU refused the work", e));
        }
        let out_bytes = 8 * out_len as u64;
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| device_error("waiting for the GPU", e))?;
        rx.await
            .map_err(|_| Error::Device("the GPU dropped a read-back".into()))?
            .map_err(|e| device_error("reading back from the GPU", e))?;
        let mut out = vec![0u64; out_len];
        {
            let view = staging
                .slice(..out_bytes.max(8))
                .get_mapped_range()
                .map_err(|e| device_error("mapping the read-back", e))?;
            bytemuck::cast_slice_mut::<u64, u8>(&mut out)
                .copy_from_slice(&view[..out_bytes as usize]);
        }
        staging.unmap();
        let up: usize = inputs.iter().map(|d| d.len()).sum();
        self.count(|s| {
            s.submissions += 1;
            s.dispatches += dispatches.len() as u64;
            s.bytes_up += 8 * up as u64;
            s.bytes_down += out_bytes;
        });
        self.recycle(buffers);
        Ok(out)
    }

    /// Uploads the inputs, encodes the dispatches and the copy to a
    /// read-back buffer, and submits; returns the pooled buffers and the
    /// read-back buffer.
    fn submit(
        &self,
        inputs: &[&[u64]],
        out_len: usize,
        dispatches: &[Dispatch],
    ) -> Result<(Vec<wgpu::Buffer>, wgpu::Buffer)> {
        let mut buffers = Vec::with_capacity(inputs.len() + 1);
        for data in inputs {
            let buf = self.buffer(8 * data.len() as u64)?;
            if !data.is_empty() {
                self.queue.write_buffer(&buf, 0, bytemuck::cast_slice(data));
            }
            buffers.push(buf);
        }
        let out_bytes = 8 * out_len as u64;
        buffers.push(self.buffer(out_bytes)?);

        // Parameter blocks, one aligned slot per dispatch.
        let slot = self.uniform_align.max(96);
        let mut params = vec![0u8; (slot as usize) * dispatches.len().max(1)];
        for (i, d) in dispatches.iter().enumerate() {
            let bytes: &[u8] = bytemuck::cast_slice(&d.params);
            params[i * slot as usize..][..bytes.len()].copy_from_slice(bytes);
        }
        let uniforms = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hush parameters"),
            size: params.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&uniforms, 0, &params);

        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("hush"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("hush"),
                timestamp_writes: None,
            });
            for (i, d) in dispatches.iter().enumerate() {
                let pipeline = self.pipeline(d.kernel)?;
                let layout = pipeline.get_bind_group_layout(0);
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &uniforms,
                        offset: i as u64 * slot,
                        size: wgpu::BufferSize::new(d.kernel.params_bytes()),
                    }),
                }];
                for (b, &(buf, offset, size)) in d.bindings.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: b as u32 + 1,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &buffers[buf],
                            offset,
                            size: wgpu::BufferSize::new(size.max(8)),
                        }),
                    });
                }
                let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("hush bindings"),
                    layout: &layout,
                    entries: &entries,
                });
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hush read-back"),
            size: out_bytes.max(8),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if out_bytes > 0 {
            encoder.copy_buffer_to_buffer(&buffers[inputs.len()], 0, &staging, 0, out_bytes);
        }
        self.queue.submit(Some(encoder.finish()));
        Ok((buffers, staging))
    }

    fn pipeline(&self, kernel: Kernel) -> Result<&wgpu::ComputePipeline> {
        self.pipelines
            .iter()
            .find(|(k, _)| *k == kernel)
            .map(|(_, p)| p)
            .ok_or(Error::Unsupported("a kernel without a pipeline"))
    }
}
