//! A small principal component analysis (PCA) for drawing codes with more
//! than two numbers on a flat picture.
//!
//! The idea: move the cloud of codes so its average sits at the origin, find
//! the direction in which the codes spread out the most (the first principal
//! component), then the direction of most spread at right angles to it (the
//! second), and describe each code by its two coordinates along those
//! directions. Technically the directions are the top two eigenvectors of the
//! `d x d` covariance matrix, found here by power iteration (multiply a vector
//! by the matrix again and again until it stops turning) and deflation
//! (remove the first direction from the matrix, then repeat). Everything is
//! done in `f64` from a fixed starting vector, so the result is the same on
//! every run. The cost is `n * d²` for the covariance plus `d²` per
//! iteration, fine for latent codes (`d` up to a few hundred).

use gradtape_kernels::Tensor;

/// Most power-iteration steps per component.
const MAX_ITERS: usize = 5000;

/// A fitted two-component PCA of `d`-dimensional codes.
#[derive(Clone, Debug)]
pub struct Pca2 {
    /// The average code (length `d`).
    pub mean: Vec<f64>,
    /// The first and second principal directions, each of length `d`, unit
    /// length and at right angles to each other. For `d == 1` the second is
    /// all zeros (there is no second direction); for `d == 0` both are empty.
    /// The sign of each is fixed so that its largest entry (by size) is
    /// positive.
    pub components: [Vec<f64>; 2],
    /// Variance of the codes along each component.
    pub variances: [f64; 2],
    /// Total variance of the codes (sum over all `d` coordinates).
    pub total_variance: f64,
}

impl Pca2 {
    /// Fits the PCA to `codes`, shape `[n, d]` (one code per row). A tensor of
    /// any other rank is read as `[shape[0], everything else]`.
    pub fn fit(codes: &Tensor<f32>) -> Pca2 {
        let (n, d) = rows_cols(codes);
        let data = codes.data();
        let mut mean = vec![0.0f64; d];
        for row in data.chunks_exact(d.max(1)).take(n) {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += x as f64;
            }
        }
        if n > 0 {
            mean.iter_mut().for_each(|m| *m /= n as f64);
        }
        // Covariance C = (1/n) Σ (x - mean)(x - mean)ᵀ, row-major d x d.
        let mut cov = vec![0.0f64; d * d];
        let mut centred = vec![0.0f64; d];
        for row in data.chunks_exact(d.max(1)).take(n) {
            for j in 0..d {
                centred[j] = row[j] as f64 - mean[j];
            }
            for i in 0..d {
                let ci = centred[i];
                for j in i..d {
                    cov[i * d + j] += ci * centred[j];
                }
            }
        }
        for i in 0..d {
            for j in i..d {
                let v = if n > 0 { cov[i * d + j] / n as f64 } else { 0.0 };
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        let total_variance: f64 = (0..d).map(|i| cov[i * d + i]).sum();

        if d == 0 {
            return Pca2 { mean, components: [vec![], vec![]], variances: [0.0; 2], total_variance };
        }
        let first = top_eigenvector(&cov, d, None).unwrap_or_else(|| unit_orthogonal_to(d, None));
        let first = fix_sign(first);
        let second = if d == 1 {
            vec![0.0]
        } else {
            // Deflation: C' = C - λ₁ u₁ u₁ᵀ has u₁ as an eigenvector with
            // eigenvalue 0, so its top eigenvector is C's second one.
            let l1 = rayleigh(&cov, &first, d);
            let mut deflated = cov.clone();
            for i in 0..d {
                for j in 0..d {
                    deflated[i * d + j] -= l1 * first[i] * first[j];
                }
            }
            let second = top_eigenvector(&deflated, d, Some(&first))
                .unwrap_or_else(|| unit_orthogonal_to(d, Some(&first)));
            fix_sign(second)
        };
        let variances = [rayleigh(&cov, &first, d).max(0.0), rayleigh(&cov, &second, d).max(0.0)];
        Pca2 { mean, components: [first, second], variances, total_variance }
    }

    /// Fraction of the total variance that each component explains (each in
    /// `[0, 1]`; both 0 when all codes are the same).
    pub fn explained(&self) -> [f64; 2] {
        if self.total_variance > 0.0 {
            self.variances.map(|v| (v / self.total_variance).clamp(0.0, 1.0))
        } else {
            [0.0; 2]
        }
    }

    /// The coordinates of one code (length `d`) along the two components.
    pub fn project(&self, code: &[f32]) -> [f32; 2] {
        self.components.each_ref().map(|u| {
            u.iter().zip(code).zip(&self.mean).map(|((u, &x), m)| u * (x as f64 - m)).sum::<f64>() as f32
        })
    }
}

/// Projects codes `[n, d]` onto their top two principal components.
///
/// Returns each code's two coordinates (in the order of the rows) and the
/// fraction of the total variance each component explains. If the codes lie
/// on a plane (any 2-D flat through their mean), the projection keeps all
/// distances between codes; otherwise it keeps as much spread as any flat
/// picture can. See [`Pca2`] for the details and the components themselves.
pub fn pca_2d(codes: &Tensor<f32>) -> (Vec<[f32; 2]>, [f64; 2]) {
    let pca = Pca2::fit(codes);
    let (n, d) = rows_cols(codes);
    let points = codes.data().chunks_exact(d.max(1)).take(n).map(|row| pca.project(row)).collect();
    (points, pca.explained())
}

/// `(n, d)` of a codes tensor: `[n, d]`, or `[shape[0], rest]` for other ranks.
fn rows_cols(codes: &Tensor<f32>) -> (usize, usize) {
    let shape = codes.shape();
    match shape.first() {
        None | Some(0) => (0, shape.iter().skip(1).product()),
        Some(&n) => (n, codes.data().len() / n),
    }
}

/// vᵀ C v.
fn rayleigh(cov: &[f64], v: &[f64], d: usize) -> f64 {
    (0..d).map(|i| v[i] * (0..d).map(|j| cov[i * d + j] * v[j]).sum::<f64>()).sum()
}

fn normalise(v: &mut [f64]) -> f64 {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

/// Removes from `v` its part along the unit vector `u`.
fn orthogonalise(v: &mut [f64], u: &[f64]) {
    let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
    v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
}

/// The eigenvector of the symmetric positive semi-definite `cov` with the
/// largest eigenvalue, by power iteration (kept at right angles to
/// `against`, if given). `None` when the matrix is (numerically) zero on the
/// space searched, so no direction stands out.
fn top_eigenvector(cov: &[f64], d: usize, against: Option<&[f64]>) -> Option<Vec<f64>> {
    let scale = (0..d).map(|i| cov[i * d + i].abs()).fold(0.0f64, f64::max);
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    // A fixed "random-looking" start (xorshift), so it is almost surely not
    // at right angles to the answer, and the same on every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut v: Vec<f64> = (0..d)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    if let Some(u) = against {
        orthogonalise(&mut v, u);
    }
    normalise(&mut v);
    let mut next = vec![0.0f64; d];
    for _ in 0..MAX_ITERS {
        for i in 0..d {
            next[i] = (0..d).map(|j| cov[i * d + j] * v[j]).sum();
        }
        if let Some(u) = against {
            orthogonalise(&mut next, u);
        }
        let norm = normalise(&mut next);
        if norm.is_nan() || norm <= scale * 1e-12 {
            return None;
        }
        let change: f64 = next.iter().zip(&v).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
        std::mem::swap(&mut v, &mut next);
        if change < 1e-13 {
            break;
        }
    }
    Some(v)
}

/// A unit vector at right angles to `against` (if given): the coordinate
/// axis least aligned with it, with its part along `against` removed.
fn unit_orthogonal_to(d: usize, against: Option<&[f64]>) -> Vec<f64> {
    let j = match against {
        None => 0,
        Some(u) => (0..d).min_by(|&a, &b| u[a].abs().total_cmp(&u[b].abs())).unwrap_or(0),
    };
    let mut v = vec![0.0; d];
    v[j] = 1.0;
    if let Some(u) = against {
        orthogonalise(&mut v, u);
    }
    normalise(&mut v);
    v
}

/// Flips `v` so its largest entry (by size; the first of equals) is positive.
fn fix_sign(mut v: Vec<f64>) -> Vec<f64> {
    let mut best = 0;
    for i in 1..v.len() {
        if v[i].abs() > v[best].abs() {
            best = i;
        }
    }
    if v.get(best).is_some_and(|&x| x < 0.0) {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    v
}
