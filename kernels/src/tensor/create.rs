//! Making tensors: from data, filled, random, and directly on a device.
//!
//! Every constructor here returns a contiguous row-major tensor. The random
//! ones come in pairs: `uniform(shape, .., seed)` makes its own generator
//! from a seed, `uniform_with(shape, .., rng)` draws from yours. The `_on`
//! forms make the tensor where it will be used, so a GPU tensor is filled
//! by a kernel instead of being copied up from the host.

use super::*;

/// Elements per independently seeded piece of a large Bernoulli mask (see
/// [`Tensor::bernoulli_with`]).
pub const MASK_STREAM: usize = 1 << 15;

/// Ones where 32 random bits fall below `threshold`, zeros elsewhere.
fn fill_mask<T: Element>(out: &mut [T], threshold: u64, rng: &mut impl Rng) {
    const BLOCK: usize = 1024;
    let mut bits = [0u32; BLOCK];
    for chunk in out.chunks_mut(BLOCK) {
        let bits = &mut bits[..chunk.len()];
        rng.fill(bits);
        for (o, &b) in chunk.iter_mut().zip(bits.iter()) {
            *o = if u64::from(b) < threshold { T::one() } else { T::zero() };
        }
    }
}

impl<T: Element> Tensor<T> {
    /// Builds a tensor from its elements in row-major order.
    ///
    /// Panics (at the caller) if `data.len()` is not the product of `shape`.
    ///
    /// ```
    /// use gradtape_kernels::Tensor;
    ///
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// assert_eq!((t.shape(), t.at(&[1, 0])), (&[2, 3][..], 4.0));
    /// let z = Tensor::<f64>::zeros(&[2, 2]);
    /// let o = Tensor::<f64>::ones(&[2]);
    /// let r = Tensor::<f64>::arange(3); // 0, 1, 2
    /// assert_eq!((z.sum_all().item(), o.sum_all().item(), r.data()), (0.0, 2.0, &[0.0, 1.0, 2.0][..]));
    /// // Seeded random tensors: the same seed gives the same numbers.
    /// let u = Tensor::<f64>::uniform(&[1000], -1.0, 1.0, 7);
    /// assert_eq!(u, Tensor::uniform(&[1000], -1.0, 1.0, 7));
    /// assert!(u.data().iter().all(|&v| (-1.0..1.0).contains(&v)));
    /// let n = Tensor::<f64>::normal(&[10_000], 0.0, 2.0, 7);
    /// assert!((n.mean_all().item()).abs() < 0.1);
    /// ```
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        assert_eq!(
            data.len(),
            numel(shape),
            "from_vec: {} elements cannot have shape {:?} ({} elements)",
            data.len(),
            shape,
            numel(shape)
        );
        Tensor::host(Shape::from_slice(shape), Arc::new(data))
    }

    /// A tensor of `shape` whose elements are written by `fill`, which must
    /// write every element: the buffer may be a recycled one still holding
    /// old numbers (see [`crate::pool`]).
    pub fn from_fill(shape: &[usize], fill: impl FnOnce(&mut [T])) -> Self {
        Self::from_fill_shape(Shape::from_slice(shape), fill)
    }

    /// [`Tensor::from_fill`] for a shape already in hand.
    pub fn from_fill_shape(shape: Shape, fill: impl FnOnce(&mut [T])) -> Self {
        let mut data = Self::pooled_buffer(numel(&shape));
        fill(Arc::get_mut(&mut data).expect("a pooled buffer is uniquely owned"));
        Tensor::host(shape, data)
    }

    /// `len` elements for a new tensor: an idle buffer from this thread's
    /// pool, or a new one. (Apart from [`Tensor::from_fill_shape`], which
    /// every kernel instantiates with its own closure, so that this part is
    /// compiled once per element type.)
    fn pooled_buffer(len: usize) -> Arc<Vec<T>> {
        T::with_pool(|pool| pool.take(len)).flatten().unwrap_or_else(|| Arc::new(vec![T::zero(); len]))
    }

    /// Like [`Tensor::from_vec`], but returns an error instead of panicking;
    /// for data that comes from outside (files, checkpoints).
    pub fn try_from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self, String> {
        if data.len() != numel(shape) {
            return Err(format!(
                "{} elements cannot have shape {:?} ({} elements)",
                data.len(),
                shape,
                numel(shape)
            ));
        }
        Ok(Self::from_vec(data, shape))
    }

    /// A tensor whose every element is `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        Self::from_fill(shape, |out| out.fill(value))
    }

    /// All zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// All ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// A zero-dimensional tensor holding one number.
    pub fn scalar(value: T) -> Self {
        Self::from_vec(vec![value], &[])
    }

    /// `0, 1, ..., n-1` as a 1-D tensor.
    pub fn arange(n: usize) -> Self {
        Self::from_vec((0..n).map(|i| T::of(i as f64)).collect(), &[n])
    }

    /// Uniform numbers in `[low, high)`, from a seeded generator.
    pub fn uniform(shape: &[usize], low: f64, high: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::uniform_with(shape, low, high, &mut rng)
    }

    /// Uniform numbers in `[low, high)` drawn from `rng`.
    pub fn uniform_with(shape: &[usize], low: f64, high: f64, rng: &mut impl Rng) -> Self {
        let data = (0..numel(shape)).map(|_| T::of(low + (high - low) * rng.random::<f64>())).collect();
        Self::from_vec(data, shape)
    }

    /// Normal numbers with the given mean and standard deviation, seeded.
    pub fn normal(shape: &[usize], mean: f64, std: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::normal_with(shape, mean, std, &mut rng)
    }

    /// Normal numbers drawn from `rng`.
    pub fn normal_with(shape: &[usize], mean: f64, std: f64, rng: &mut impl Rng) -> Self {
        let data = (0..numel(shape))
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                T::of(mean + std * z)
            })
            .collect();
        Self::from_vec(data, shape)
    }

    /// A mask of ones (with probability `p_one`) and zeros, seeded.
    pub fn bernoulli(shape: &[usize], p_one: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::bernoulli_with(shape, p_one, &mut rng)
    }

    /// A mask of ones (with probability `p_one`) and zeros drawn from `rng`.
    ///
    /// Each element compares 32 random bits against `p_one * 2^32`, so the
    /// probability is `p_one` to within 2^-33, exactly 0 or 1 at the ends.
    /// The bits are drawn a block at a time (`Rng::fill`) and the
    /// comparisons run as one vectorised loop: a denoising autoencoder draws
    /// 200,000 of these every step, and one `f64` draw per element was an
    /// eighth of its training time.
    ///
    /// Masks longer than [`MASK_STREAM`] elements are drawn in pieces of that
    /// length, in parallel, each from its own generator seeded by `rng` in
    /// order: the result depends on `rng` and the shape only, not on how many
    /// threads there are.
    #[track_caller]
    pub fn bernoulli_with(shape: &[usize], p_one: f64, rng: &mut impl Rng) -> Self {
        assert!((0.0..=1.0).contains(&p_one), "bernoulli: p = {p_one} is not a probability");
        // In [0, 2^32]: 0 never fires, 2^32 always does.
        let threshold = (p_one * 4_294_967_296.0).round() as u64;
        // Into a recycled buffer: a dropout or noise mask is drawn every step.
        Self::from_fill(shape, |out| {
            if out.len() <= MASK_STREAM {
                return fill_mask(out, threshold, rng);
            }
            let seeds: Vec<u64> = (0..out.len().div_ceil(MASK_STREAM)).map(|_| rng.next_u64()).collect();
            out.par_chunks_mut(MASK_STREAM)
                .zip(seeds)
                .for_each(|(piece, seed)| fill_mask(piece, threshold, &mut StdRng::seed_from_u64(seed)));
        })
    }

    /// A tensor whose every element is `value`, on `device`.
    #[track_caller]
    pub fn full_on(shape: &[usize], value: T, device: Device) -> Self {
        match device {
            Device::Cpu => Self::full(shape, value),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let gpu = opened_gpu("full_on", n);
                crate::cuda::ops::full(&gpu, shape, value)
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(n) => cuda_not_built("full_on", n),
        }
    }

    /// All zeros, on `device`.
    #[track_caller]
    pub fn zeros_on(shape: &[usize], device: Device) -> Self {
        Self::full_on(shape, T::zero(), device)
    }

    /// A Bernoulli mask (ones with probability `p_one`) on `device`.
    ///
    /// On the CPU this is [`Tensor::bernoulli_with`]. On a GPU the mask is
    /// drawn where it is used, by the counter-based generator in the kernel
    /// source (`kernels/cuda/philox.cuh`), keyed by one 64-bit draw from
    /// `rng`: the same `rng` state gives the same mask on every run and for
    /// any launch shape, though not the same mask as the CPU draws.
    #[track_caller]
    pub fn bernoulli_on(shape: &[usize], p_one: f64, rng: &mut impl Rng, device: Device) -> Self {
        match device {
            Device::Cpu => Self::bernoulli_with(shape, p_one, rng),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                assert!((0.0..=1.0).contains(&p_one), "bernoulli: p = {p_one} is not a probability");
                let gpu = opened_gpu("bernoulli_on", n);
                let threshold = (p_one * 4_294_967_296.0).round() as u64;
                crate::cuda::ops::bernoulli(&gpu, shape, (rng.next_u64(), 0, None), threshold)
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(n) => cuda_not_built("bernoulli_on", n),
        }
    }

    /// Normal numbers on `device`: [`Tensor::normal_with`] on the CPU, the
    /// kernels' counter-based generator keyed by one draw from `rng` on a
    /// GPU (see [`Tensor::bernoulli_on`]).
    #[track_caller]
    pub fn normal_on(shape: &[usize], mean: f64, std: f64, rng: &mut impl Rng, device: Device) -> Self {
        match device {
            Device::Cpu => Self::normal_with(shape, mean, std, rng),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let gpu = opened_gpu("normal_on", n);
                crate::cuda::ops::normal(&gpu, shape, (rng.next_u64(), 0, None), mean, std)
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(n) => cuda_not_built("normal_on", n),
        }
    }
}
