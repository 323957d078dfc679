/*
 * facenb._closest: exact closest points on a triangle mesh (float64), a bounding-volume hierarchy in C.
 *
 * Optional accelerator of facenb.distance.SurfaceQuery (setup.py builds it with `optional=True`; without a C
 * compiler facenb uses libigl's AABB tree and gives the same numbers to rounding). No numpy C API: arrays are
 * passed as C-contiguous buffers allocated by the Python side (facenb/distance.py), which checks shapes/dtypes.
 *
 * build(tri, order, box, link, tri_sorted, pos, pre, pre2, leafidx) -> (n_nodes, n_leaves)
 *   tri   (k, 9) float64  triangle corners a, b, c (read)
 *   order (k,)   int64    out: triangle indices in leaf order
 *   box   (2k,6) float64  out: node bounding boxes (min xyz, max xyz)
 *   link  (2k,2) int64    out: internal node (left, right); leaf (-1 - start, count) into `order`
 *   and the per-triangle / per-leaf constants the query reads (see py_build)
 *   Median split of the triangle centroids on the longest axis of their bounds, at most 2 triangles per leaf.
 *
 * query(tri_sorted, pre, box, link, order, pos, points, hint, d2, face, closest, pre2, leafidx)
 *   tri_sorted (k, 9) float64  tri[order] (leaf order)
 *   pre        (k, 16) float64 per-triangle constants in leaf order (facenb.distance._triangle_constants; see
 *                              tri_dist2 below: a cheap exact lower bound rejects most triangles)
 *   pos        (k,)   int64    position in leaf order of each original triangle (inverse of order)
 *   pre2       (L, 17, 2) float64  per leaf, `pre` of its first and last triangle side by side (+ a mask that
 *                              is all ones, or 0 for a flat triangle), for the two-at-a-time SSE2 bound
 *   leafidx    (n_nodes,) int64    row of pre2 of each leaf node
 *   points     (n, 3) float64
 *   hint       (n,)   int64    a triangle per point whose distance starts the search (< 0: none); any value
 *                              gives the same minimum distance, a good one only prunes more of the tree
 *   d2 (n,) float64, face (n,) int64, closest (n, 3) float64: out
 *   Branch and bound: a node is skipped when the squared distance from the point to its box is >= the best
 *   squared distance found so far, so the answer is the exact minimum over all triangles (ties: first found).
 *   Points are processed in groups of GROUP sharing one list of candidate leaves (see query_points).
 *   Closest point on a triangle: Ericson, Real-Time Collision Detection (2005), 5.1.5, in float64; a triangle
 *   whose edge vectors have an exactly zero cross product (collinear or coincident corners), or where the
 *   formulas divide 0 by 0, is taken as its three edges (closest point on each segment, the nearest kept).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* the query keeps leaf positions (Py_ssize_t) in the caller's int64 face array: a platform where they differ does
   not build this module (setup.py's optional build then leaves facenb on libigl) */
_Static_assert(sizeof(Py_ssize_t) == sizeof(int64_t), "facenb._closest needs a 64-bit Py_ssize_t");

#ifndef LEAF_SIZE
#define LEAF_SIZE 2
#endif
#define STACK_MAX 256

typedef struct {
    const double *tri;
    double *cen;  /* centroids, kept in the same (permuted) order as `order`: contiguous reads when splitting */
    int64_t *order;
    double *box;
    int64_t *link;
    Py_ssize_t n_nodes;
    double *key, *c2;     /* scratch of select_kth: keys, centroid rows */
    int64_t *slot, *o2;   /* scratch of select_kth: slots, order */
} Builder;

static void tri_bounds(const double *t, double *lo, double *hi)
{
    for (int d = 0; d < 3; d++) {
        double a = t[d], b = t[3 + d], c = t[6 + d];
        double mn = a < b ? a : b, mx = a > b ? a : b;
        lo[d] = mn < c ? mn : c;
        hi[d] = mx > c ? mx : c;
    }
}

/* nth_element on order[lo..hi) by centroid coordinate `axis`: order[k] gets the k-th smallest, smaller before
   (the centroid rows move with their triangles). Hoare partitions around the middle element, run on contiguous
   (key, slot) pairs copied from the rows (the same comparisons and swaps as on the rows themselves, so the same
   arrangement), then the rows are moved once into the resulting order. */
static void select_kth(Builder *b, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t k, int axis)
{
    int64_t *o = b->order;
    double *c = b->cen, *key = b->key;
    int64_t *slot = b->slot;
    Py_ssize_t start = lo, end = hi;
    for (Py_ssize_t i = lo; i < hi; i++) {
        key[i] = c[3 * i + axis];
        slot[i] = i;
    }
    while (hi - lo > 1) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        double pivot = key[mid];
        Py_ssize_t i = lo, j = hi - 1;
        while (i <= j) {
            while (key[i] < pivot) i++;
            while (key[j] > pivot) j--;
            if (i <= j) {
                double x = key[i]; key[i] = key[j]; key[j] = x;
                int64_t t = slot[i]; slot[i] = slot[j]; slot[j] = t;
                i++; j--;
            }
        }
        if (k <= j) hi = j + 1;
        else if (k >= i) lo = i;
        else break;
    }
    /* move the rows: order and centroids into the scratch, then back in slot order */
    int64_t *o2 = b->o2;
    double *c2 = b->c2;
    memcpy(o2 + start, o + start, sizeof(int64_t) * (size_t)(end - start));
    memcpy(c2 + 3 * start, c + 3 * start, sizeof(double) * 3 * (size_t)(end - start));
    for (Py_ssize_t i = start; i < end; i++) {
        Py_ssize_t s = (Py_ssize_t)slot[i];
        o[i] = o2[s];
        c[3 * i] = c2[3 * s]; c[3 * i + 1] = c2[3 * s + 1]; c[3 * i + 2] = c2[3 * s + 2];
    }
}

static Py_ssize_t build_node(Builder *b, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t node = b->n_nodes++;
    double *bx = b->box + 6 * node;
    if (end - start <= LEAF_SIZE) {
        bx[0] = bx[1] = bx[2] = INFINITY;
        bx[3] = bx[4] = bx[5] = -INFINITY;
        for (Py_ssize_t i = start; i < end; i++) {
            double lo[3], hi[3];
            tri_bounds(b->tri + 9 * b->order[i], lo, hi);
            for (int d = 0; d < 3; d++) {
                if (lo[d] < bx[d]) bx[d] = lo[d];
                if (hi[d] > bx[3 + d]) bx[3 + d] = hi[d];
            }
        }
        b->link[2 * node] = -1 - (int64_t)start;
        b->link[2 * node + 1] = (int64_t)(end - start);
        return node;
    }
    double clo[3] = {INFINITY, INFINITY, INFINITY}, chi[3] = {-INFINITY, -INFINITY, -INFINITY};
#if defined(__SSE2__)
    {   /* x and y as one pair, z apart: branch-free (the coordinates are finite) */
        __m128d lo = _mm_set1_pd(INFINITY), hi = _mm_set1_pd(-INFINITY);
        __m128d lz = _mm_set_sd(INFINITY), hz = _mm_set_sd(-INFINITY);
        for (Py_ssize_t i = start; i < end; i++) {
            const double *c = b->cen + 3 * i;
            __m128d xy = _mm_loadu_pd(c), z = _mm_load_sd(c + 2);
            lo = _mm_min_pd(lo, xy); hi = _mm_max_pd(hi, xy);
            lz = _mm_min_sd(lz, z); hz = _mm_max_sd(hz, z);
        }
        _mm_storeu_pd(clo, lo); _mm_storeu_pd(chi, hi);
        clo[2] = _mm_cvtsd_f64(lz); chi[2] = _mm_cvtsd_f64(hz);
    }
#else
    for (Py_ssize_t i = start; i < end; i++) {
        const double *c = b->cen + 3 * i;
        for (int d = 0; d < 3; d++) {
            if (c[d] < clo[d]) clo[d] = c[d];
            if (c[d] > chi[d]) chi[d] = c[d];
        }
    }
#endif
    int axis = 0;
    double ext = chi[0] - clo[0];
    for (int d = 1; d < 3; d++) {
        if (chi[d] - clo[d] > ext) { ext = chi[d] - clo[d]; axis = d; }
    }
    Py_ssize_t mid = start + (end - start) / 2;
    select_kth(b, start, end, mid, axis);
    Py_ssize_t left = build_node(b, start, mid);
    Py_ssize_t right = build_node(b, mid, end);
    b->link[2 * node] = (int64_t)left;
    b->link[2 * node + 1] = (int64_t)right;
    /* the node's box is the union of its children's (computed bottom-up: each triangle's bounds read once) */
    bx = b->box + 6 * node;
    const double *bl = b->box + 6 * left, *br = b->box + 6 * right;
    for (int d = 0; d < 3; d++) {
        bx[d] = bl[d] < br[d] ? bl[d] : br[d];
        bx[3 + d] = bl[3 + d] > br[3 + d] ? bl[3 + d] : br[3 + d];
    }
    return node;
}

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize, const char *name)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) {
        return -1;
    }
    if (view->itemsize != itemsize || view->len % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "_closest: %s must hold %zd-byte items", name, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* too flat for well-conditioned barycentrics: squared sine of the angle at a below 1e-6, zero area included
   (d00 = ab.ab, d01 = ab.ac, d11 = ac.ac); such a triangle goes to Ericson's test alone */
static inline int too_flat(double d00, double d01, double d11) { return !(d00 * d11 - d01 * d01 > 1e-6 * d00 * d11); }

/* per triangle (leaf order) the 16 constants of tri_dist2: a, ab, ac, d00, d01, d11, inv, hA, hB, hC */
static void triangle_constants(const double *t, double *P)
{
    double ab[3], ac[3], bc[3];
    for (int d = 0; d < 3; d++) {
        ab[d] = t[3 + d] - t[d]; ac[d] = t[6 + d] - t[d]; bc[d] = t[6 + d] - t[3 + d];
        P[d] = t[d]; P[3 + d] = ab[d]; P[6 + d] = ac[d];
    }
    double d00 = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
    double d01 = ab[0] * ac[0] + ab[1] * ac[1] + ab[2] * ac[2];
    double d11 = ac[0] * ac[0] + ac[1] * ac[1] + ac[2] * ac[2];
    double ebc = bc[0] * bc[0] + bc[1] * bc[1] + bc[2] * bc[2];
    double det = d00 * d11 - d01 * d01;
    P[9] = d00; P[10] = d01; P[11] = d11;
    if (!too_flat(d00, d01, d11)) {  /* else inv = 0: Ericson's test alone */
        double twice_area = sqrt(det);
        P[12] = 1.0 / det;
        P[13] = twice_area / sqrt(ebc);  /* altitude from a onto bc */
        P[14] = twice_area / sqrt(d11);  /* from b onto ca */
        P[15] = twice_area / sqrt(d00);  /* from c onto ab */
    } else {
        P[12] = P[13] = P[14] = P[15] = 0.0;
    }
}

/*
 * build(tri, order, box, link, tri_sorted, pos, pre, pre2, leafidx) -> (n_nodes, n_leaves)
 *   outputs besides order/box/link (all allocated by the caller): tri_sorted (k, 9) = tri[order]; pos (k,) the
 *   inverse of order; pre (k, 16) the constants of tri_dist2 in leaf order; pre2 (>= n_leaves, 17, 2) per leaf
 *   its first and last triangle's constants side by side + a mask (all bits set; 0 for a flat triangle);
 *   leafidx (2k,) the pre2 row of each leaf node.
 */
static PyObject *py_build(PyObject *self, PyObject *args)
{
    enum { NARG = 9 };
    PyObject *o[NARG];
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8])) {
        return NULL;
    }
    static const char *names[NARG] = {"tri", "order", "box", "link", "tri_sorted", "pos", "pre", "pre2",
                                      "leafidx"};
    Py_buffer v[NARG];
    int got = 0;
    PyObject *result = NULL;
    double *cen = NULL;
    for (; got < NARG; got++) {
        if (get_buffer(o[got], &v[got], got > 0, 8, names[got]) < 0) goto done;
    }
    Py_ssize_t k = v[0].len / 72;
    if (k < 1 || v[1].len / 8 != k || v[2].len / 48 < 2 * k || v[3].len / 16 < 2 * k || v[4].len / 72 != k ||
        v[5].len / 8 != k || v[6].len / 128 != k || v[7].len / 272 < k || v[8].len / 8 < 2 * k) {
        PyErr_SetString(PyExc_ValueError, "_closest.build: inconsistent array sizes");
        goto done;
    }
    cen = (double *)malloc(sizeof(double) * 9 * (size_t)k);
    if (cen == NULL) { PyErr_NoMemory(); goto done; }
    const double *tri = (const double *)v[0].buf;
    int64_t *order = (int64_t *)v[1].buf, *link = (int64_t *)v[3].buf, *pos = (int64_t *)v[5].buf;
    int64_t *leafidx = (int64_t *)v[8].buf;
    double *tri_sorted = (double *)v[4].buf, *pre = (double *)v[6].buf, *pre2 = (double *)v[7].buf;
    for (Py_ssize_t f = 0; f < k; f++) {
        for (int d = 0; d < 3; d++) {
            cen[3 * f + d] = (tri[9 * f + d] + tri[9 * f + 3 + d] + tri[9 * f + 6 + d]) / 3.0;
        }
        order[f] = f;
    }
    /* cen: 3k centroid coordinates, then select_kth's scratch: k keys, 3k rows, k order entries, k slots */
    Builder b = {.tri = tri, .cen = cen, .order = order, .box = (double *)v[2].buf, .link = link, .n_nodes = 0,
                 .key = cen + 3 * k, .c2 = cen + 4 * k, .o2 = (int64_t *)(cen + 7 * k),
                 .slot = (int64_t *)(cen + 8 * k)};
    Py_ssize_t n_leaves = 0;
    Py_BEGIN_ALLOW_THREADS
    build_node(&b, 0, k);
    for (Py_ssize_t j = 0; j < k; j++) {
        memcpy(tri_sorted + 9 * j, tri + 9 * order[j], 9 * sizeof(double));
        pos[order[j]] = j;
        triangle_constants(tri_sorted + 9 * j, pre + 16 * j);
    }
    for (Py_ssize_t node = 0; node < b.n_nodes; node++) {
        leafidx[node] = 0;
        if (link[2 * node] >= 0) continue;
        Py_ssize_t start = (Py_ssize_t)(-1 - link[2 * node]), last = start + (Py_ssize_t)link[2 * node + 1] - 1;
        double *row = pre2 + 34 * n_leaves;
        for (int c = 0; c < 16; c++) {
            row[2 * c] = pre[16 * start + c];
            row[2 * c + 1] = pre[16 * last + c];
        }
        uint64_t ones = ~(uint64_t)0, zero = 0;
        memcpy(row + 32, pre[16 * start + 12] != 0.0 ? &ones : &zero, sizeof(double));
        memcpy(row + 33, pre[16 * last + 12] != 0.0 ? &ones : &zero, sizeof(double));
        leafidx[node] = (int64_t)n_leaves++;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", b.n_nodes, n_leaves);
done:
    free(cen);
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    return result;
}

static inline double dot3(const double *a, const double *b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

/* closest point on segment [a, b] to p; returns squared distance */
static double closest_on_segment(const double *p, const double *a, const double *b, double *q)
{
    double ab[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    double ap[3] = {p[0] - a[0], p[1] - a[1], p[2] - a[2]};
    double den = dot3(ab, ab), t = 0.0;
    if (den > 0.0) {
        t = dot3(ap, ab) / den;
        if (t < 0.0) t = 0.0;
        else if (t > 1.0) t = 1.0;
    }
    for (int d = 0; d < 3; d++) q[d] = a[d] + t * ab[d];
    double e[3] = {p[0] - q[0], p[1] - q[1], p[2] - q[2]};
    return dot3(e, e);
}

/* Ericson 5.1.5 ClosestPtPointTriangle; returns squared distance, q = closest point */
static double closest_on_triangle(const double *p, const double *t, double *q)
{
    const double *a = t, *b = t + 3, *c = t + 6;
    double ab[3], ac[3], ap[3], bp[3], cp[3];
    for (int d = 0; d < 3; d++) {
        ab[d] = b[d] - a[d]; ac[d] = c[d] - a[d]; ap[d] = p[d] - a[d];
    }
    double d1 = dot3(ab, ap), d2 = dot3(ac, ap);
    if (d1 <= 0.0 && d2 <= 0.0) {
        q[0] = a[0]; q[1] = a[1]; q[2] = a[2];
        goto out;
    }
    for (int d = 0; d < 3; d++) bp[d] = p[d] - b[d];
    double d3 = dot3(ab, bp), d4 = dot3(ac, bp);
    if (d3 >= 0.0 && d4 <= d3) {
        q[0] = b[0]; q[1] = b[1]; q[2] = b[2];
        goto out;
    }
    {
        /* corners exactly collinear or coincident: Ericson's edge and face regions do not apply */
        double nx = ab[1] * ac[2] - ab[2] * ac[1], ny = ab[2] * ac[0] - ab[0] * ac[2];
        double nz = ab[0] * ac[1] - ab[1] * ac[0];
        if (nx == 0.0 && ny == 0.0 && nz == 0.0) goto edges;
    }
    double vc = d1 * d4 - d3 * d2;
    if (vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0) {
        double v = d1 / (d1 - d3);
        for (int d = 0; d < 3; d++) q[d] = a[d] + v * ab[d];
        goto out;
    }
    for (int d = 0; d < 3; d++) cp[d] = p[d] - c[d];
    double d5 = dot3(ab, cp), d6 = dot3(ac, cp);
    if (d6 >= 0.0 && d5 <= d6) {
        q[0] = c[0]; q[1] = c[1]; q[2] = c[2];
        goto out;
    }
    double vb = d5 * d2 - d1 * d6;
    if (vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0) {
        double w = d2 / (d2 - d6);
        for (int d = 0; d < 3; d++) q[d] = a[d] + w * ac[d];
        goto out;
    }
    double va = d3 * d6 - d5 * d4;
    if (va <= 0.0 && (d4 - d3) >= 0.0 && (d5 - d6) >= 0.0) {
        double w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
        for (int d = 0; d < 3; d++) q[d] = b[d] + w * (c[d] - b[d]);
        goto out;
    }
    {
        double inv = 1.0 / (va + vb + vc);
        double v = vb * inv, w = vc * inv;
        for (int d = 0; d < 3; d++) q[d] = a[d] + ab[d] * v + ac[d] * w;
    }
out:
    if (!(isfinite(q[0]) && isfinite(q[1]) && isfinite(q[2]))) {
edges:
        /* a zero-area triangle (or a 0/0 above): the closest point lies on one of the three edges */
        ;
        double q1[3], q2[3];
        double s0 = closest_on_segment(p, a, b, q);
        double s1 = closest_on_segment(p, b, c, q1);
        double s2 = closest_on_segment(p, c, a, q2);
        if (s1 < s0) { s0 = s1; q[0] = q1[0]; q[1] = q1[1]; q[2] = q1[2]; }
        if (s2 < s0) { s0 = s2; q[0] = q2[0]; q[1] = q2[1]; q[2] = q2[2]; }
        return s0;
    }
    {
        double e[3] = {p[0] - q[0], p[1] - q[1], p[2] - q[2]};
        return dot3(e, e);
    }
}

#if defined(__SSE2__)
/* maxsd, branch-free (libm's fmax is a call; gcc may compile a ternary to a branch) */
static inline double max2(double a, double b) { return _mm_cvtsd_f64(_mm_max_sd(_mm_set_sd(a), _mm_set_sd(b))); }
#else
static inline double max2(double a, double b) { return a > b ? a : b; }
#endif

static inline double box_dist2(const double *p, const double *bx)
{
    /* branch-free: per axis, the gap max(lo - p, p - hi, 0) */
    double gx = max2(max2(bx[0] - p[0], p[0] - bx[3]), 0.0);
    double gy = max2(max2(bx[1] - p[1], p[1] - bx[4]), 0.0);
    double gz = max2(max2(bx[2] - p[2], p[2] - bx[5]), 0.0);
    return gx * gx + gy * gy + gz * gz;
}

static inline double box_box_dist2(const double *a, const double *b)
{
    double gx = max2(max2(b[0] - a[3], a[0] - b[3]), 0.0);
    double gy = max2(max2(b[1] - a[4], a[1] - b[4]), 0.0);
    double gz = max2(max2(b[2] - a[5], a[2] - b[5]), 0.0);
    return gx * gx + gy * gy + gz * gz;
}

typedef struct {
    const double *tri, *pre, *box;
    const int64_t *link;
    Py_ssize_t k;
    const double *pre2;      /* per leaf, its (up to) 2 triangles' constants interleaved: 17 pairs */
    const int64_t *leafidx;  /* node -> row of pre2 (leaves only) */
} Tree;

/*
 * Squared distance from p to triangle j, or +inf when a lower bound already reaches `best`. Per triangle, 16
 * precomputed doubles P: a, ab = b - a, ac = c - a, the Gram entries d00 = ab.ab, d01 = ab.ac, d11 = ac.ac, inv =
 * 1 / (d00 d11 - d01^2) (0 for a triangle too flat for barycentrics), and the altitudes hA, hB, hC. With the
 * projection's barycentrics (u, v, w) and h2 = |ap|^2 - (v ab.ap + w ac.ap), the squared distance to the plane,
 * the distance to the triangle satisfies d^2 = h2 + L^2, L the in-plane distance from the projection to the
 * triangle, and L >= max(-u hA, -v hB, -w hC, 0) (distance to the nearest violated edge line). Inside (u, v, w
 * >= 0) the projection is the closest point; otherwise, when the bound does not reject the triangle, Ericson's
 * test gives the closest point.
 */
static inline double tri_dist2(const double *p, const double *P, const double *tri9, double best, double *q)
{
    double inv = P[12];
    if (inv == 0.0) return closest_on_triangle(p, tri9, q);
    double ap0 = p[0] - P[0], ap1 = p[1] - P[1], ap2 = p[2] - P[2];
    double d20 = ap0 * P[3] + ap1 * P[4] + ap2 * P[5];
    double d21 = ap0 * P[6] + ap1 * P[7] + ap2 * P[8];
    double v = (P[11] * d20 - P[10] * d21) * inv;
    double w = (P[9] * d21 - P[10] * d20) * inv;
    double u = 1.0 - v - w;
    double h2 = ap0 * ap0 + ap1 * ap1 + ap2 * ap2 - (v * d20 + w * d21);
    double l = max2(max2(-u * P[13], -v * P[14]), max2(-w * P[15], 0.0));
    if (h2 + l * l >= best) return INFINITY;
    if (u >= 0.0 && v >= 0.0 && w >= 0.0) {
        for (int d = 0; d < 3; d++) q[d] = P[d] + v * P[3 + d] + w * P[6 + d];
        double e0 = p[0] - q[0], e1 = p[1] - q[1], e2 = p[2] - q[2];
        return e0 * e0 + e1 * e1 + e2 * e2;
    }
    return closest_on_triangle(p, tri9, q);
}

/* test the triangles of leaf `node` against p, updating best / bpos / bq */
static inline void scan_leaf(const Tree *t, Py_ssize_t node, const double *p, double *best, Py_ssize_t *bpos,
                             double *bq)
{
    Py_ssize_t start = (Py_ssize_t)(-1 - t->link[2 * node]), count = (Py_ssize_t)t->link[2 * node + 1];
    double q[3];
#if defined(__SSE2__)
    /* the lower bound of tri_dist2 for both triangles of the leaf at once (a leaf of one triangle holds it twice),
       same operations in the same order; a flat triangle's bound is masked to 0 (always tested exactly) */
    if (count <= 2) {
        const double *P = t->pre2 + 34 * t->leafidx[node];
        __m128d px = _mm_set1_pd(p[0]), py = _mm_set1_pd(p[1]), pz = _mm_set1_pd(p[2]);
        __m128d ap0 = _mm_sub_pd(px, _mm_loadu_pd(P)), ap1 = _mm_sub_pd(py, _mm_loadu_pd(P + 2));
        __m128d ap2 = _mm_sub_pd(pz, _mm_loadu_pd(P + 4));
        __m128d d20 = _mm_add_pd(_mm_add_pd(_mm_mul_pd(ap0, _mm_loadu_pd(P + 6)),
                                            _mm_mul_pd(ap1, _mm_loadu_pd(P + 8))),
                                 _mm_mul_pd(ap2, _mm_loadu_pd(P + 10)));
        __m128d d21 = _mm_add_pd(_mm_add_pd(_mm_mul_pd(ap0, _mm_loadu_pd(P + 12)),
                                            _mm_mul_pd(ap1, _mm_loadu_pd(P + 14))),
                                 _mm_mul_pd(ap2, _mm_loadu_pd(P + 16)));
        __m128d d00 = _mm_loadu_pd(P + 18), d01 = _mm_loadu_pd(P + 20), d11 = _mm_loadu_pd(P + 22);
        __m128d inv = _mm_loadu_pd(P + 24);
        __m128d v = _mm_mul_pd(_mm_sub_pd(_mm_mul_pd(d11, d20), _mm_mul_pd(d01, d21)), inv);
        __m128d w = _mm_mul_pd(_mm_sub_pd(_mm_mul_pd(d00, d21), _mm_mul_pd(d01, d20)), inv);
        __m128d u = _mm_sub_pd(_mm_sub_pd(_mm_set1_pd(1.0), v), w);
        __m128d sq = _mm_add_pd(_mm_add_pd(_mm_mul_pd(ap0, ap0), _mm_mul_pd(ap1, ap1)), _mm_mul_pd(ap2, ap2));
        __m128d h2 = _mm_sub_pd(sq, _mm_add_pd(_mm_mul_pd(v, d20), _mm_mul_pd(w, d21)));
        __m128d zero = _mm_setzero_pd();
        __m128d la = _mm_max_pd(_mm_sub_pd(zero, _mm_mul_pd(u, _mm_loadu_pd(P + 26))),
                                _mm_sub_pd(zero, _mm_mul_pd(v, _mm_loadu_pd(P + 28))));
        __m128d lb = _mm_max_pd(_mm_sub_pd(zero, _mm_mul_pd(w, _mm_loadu_pd(P + 30))), zero);
        __m128d l = _mm_max_pd(la, lb);
        __m128d bound = _mm_and_pd(_mm_add_pd(h2, _mm_mul_pd(l, l)), _mm_loadu_pd(P + 32));
        int m = _mm_movemask_pd(_mm_cmplt_pd(bound, _mm_set1_pd(*best)));
        for (Py_ssize_t lane = 0; lane < count; lane++) {
            if (!(m & (1 << lane))) continue;
            Py_ssize_t j = start + lane;
            double s = tri_dist2(p, t->pre + 16 * j, t->tri + 9 * j, *best, q);
            if (s < *best) {
                *best = s; *bpos = j;
                bq[0] = q[0]; bq[1] = q[1]; bq[2] = q[2];
            }
        }
        return;
    }
#endif
    for (Py_ssize_t j = start; j < start + count; j++) {
        double s = tri_dist2(p, t->pre + 16 * j, t->tri + 9 * j, *best, q);
        if (s < *best) {
            *best = s; *bpos = j;
            bq[0] = q[0]; bq[1] = q[1]; bq[2] = q[2];
        }
    }
}

/* plain branch and bound from the root for one point; returns 0, or -1 if the stack overflows */
static int descend(const Tree *t, const double *p, double *best, Py_ssize_t *bpos, double *bq)
{
    Py_ssize_t stack[STACK_MAX];
    double sdist[STACK_MAX];
    Py_ssize_t top = 0;
    stack[top] = 0;
    sdist[top++] = box_dist2(p, t->box);
    while (top > 0) {
        top--;
        if (sdist[top] >= *best) continue;
        Py_ssize_t node = stack[top];
        int64_t l0 = t->link[2 * node], l1 = t->link[2 * node + 1];
        if (l0 < 0) {
            scan_leaf(t, node, p, best, bpos, bq);
            continue;
        }
        double dl = box_dist2(p, t->box + 6 * l0), dr = box_dist2(p, t->box + 6 * l1);
        if (top + 2 > STACK_MAX) return -1;
        /* push the farther child first so that the nearer one is visited next */
        if (dl <= dr) {
            if (dr < *best) { stack[top] = (Py_ssize_t)l1; sdist[top++] = dr; }
            if (dl < *best) { stack[top] = (Py_ssize_t)l0; sdist[top++] = dl; }
        } else {
            if (dl < *best) { stack[top] = (Py_ssize_t)l0; sdist[top++] = dl; }
            if (dr < *best) { stack[top] = (Py_ssize_t)l1; sdist[top++] = dr; }
        }
    }
    return 0;
}

/* the leaves whose box is within squared distance r2 of the box g; returns their count, cap + 1 as soon as there
   are more than cap of them, or -1 on overflow */
static Py_ssize_t leaves_near_box(const Tree *t, const double *g, double r2, Py_ssize_t *out, Py_ssize_t cap)
{
    Py_ssize_t stack[STACK_MAX];
    Py_ssize_t top = 0, n = 0;
    if (box_box_dist2(g, t->box) > r2) return 0;
    stack[top++] = 0;
    while (top > 0) {
        Py_ssize_t node = stack[--top];
        int64_t l0 = t->link[2 * node], l1 = t->link[2 * node + 1];
        if (l0 < 0) {
            if (n == cap) return cap + 1;
            out[n++] = node;
            continue;
        }
        if (top + 2 > STACK_MAX) return -1;
        if (box_box_dist2(g, t->box + 6 * l1) <= r2) stack[top++] = (Py_ssize_t)l1;
        if (box_box_dist2(g, t->box + 6 * l0) <= r2) stack[top++] = (Py_ssize_t)l0;
    }
    return n;
}

#ifndef GROUP
#define GROUP 8
#endif
#ifndef MAX_SHARED
#define MAX_SHARED 64
#endif

/*
 * Points are taken in groups of GROUP consecutive ones (callers pass them in a spatially coherent order, e.g.
 * Z-order). Each point first gets an upper bound: its hint triangle, else the previous point's closest triangle,
 * else a plain descent. With U2 the largest squared bound of the group and G the group's bounding box, a
 * point's closest triangle lies in a leaf whose box is within sqrt(U2) of the point, hence of G: the leaves within
 * sqrt(U2) of G are collected once per group, and every point of the group scans them (leaf box, then the two
 * triangles' exact lower bounds, then the exact test). Same minimum as a plain descent per point.
 */
static int query_points(const Tree *t, const int64_t *pos, const double *pts, const int64_t *hint, Py_ssize_t n,
                        double *out_d2, Py_ssize_t *out_pos, double *out_q, Py_ssize_t *leaves)
{
    for (Py_ssize_t g0 = 0; g0 < n; g0 += GROUP) {
        Py_ssize_t g1 = g0 + GROUP < n ? g0 + GROUP : n;
        double gbox[6] = {INFINITY, INFINITY, INFINITY, -INFINITY, -INFINITY, -INFINITY};
        double u2 = 0.0;
        for (Py_ssize_t i = g0; i < g1; i++) {
            const double *p = pts + 3 * i;
            double *bq = out_q + 3 * i;
            double best = INFINITY;
            Py_ssize_t bpos = -1;
            int64_t h = hint[i];
            if (h >= 0 && h < t->k) {
                bpos = (Py_ssize_t)pos[h];
                best = tri_dist2(p, t->pre + 16 * bpos, t->tri + 9 * bpos, INFINITY, bq);
            }
            if (i > 0 && out_pos[i - 1] >= 0 && out_pos[i - 1] != bpos) {
                /* the previous point's triangle: often nearer after a large move, and for points without hint */
                double q[3];
                Py_ssize_t j = out_pos[i - 1];
                double s2 = tri_dist2(p, t->pre + 16 * j, t->tri + 9 * j, best, q);
                if (s2 < best) {
                    best = s2; bpos = j;
                    bq[0] = q[0]; bq[1] = q[1]; bq[2] = q[2];
                }
            }
            if (bpos < 0) {
                bq[0] = bq[1] = bq[2] = NAN;
                if (descend(t, p, &best, &bpos, bq) < 0) return -1;
            }
            out_d2[i] = best;
            out_pos[i] = bpos;
            if (best > u2) u2 = best;
            for (int d = 0; d < 3; d++) {
                if (p[d] < gbox[d]) gbox[d] = p[d];
                if (p[d] > gbox[3 + d]) gbox[3 + d] = p[d];
            }
        }
        Py_ssize_t nl = leaves_near_box(t, gbox, u2, leaves, MAX_SHARED);
        if (nl < 0) return -1;
        if (nl > MAX_SHARED) {
            /* far from the surface, or a spread-out group: the shared list would be long, so each point descends
               the tree on its own, from its bound */
            for (Py_ssize_t i = g0; i < g1; i++) {
                if (descend(t, pts + 3 * i, out_d2 + i, out_pos + i, out_q + 3 * i) < 0) return -1;
            }
            continue;
        }
        for (Py_ssize_t i = g0; i < g1; i++) {
            const double *p = pts + 3 * i;
            double best = out_d2[i];
            Py_ssize_t bpos = out_pos[i];
            for (Py_ssize_t l = 0; l < nl; l++) {
                if (box_dist2(p, t->box + 6 * leaves[l]) >= best) continue;
                scan_leaf(t, leaves[l], p, &best, &bpos, out_q + 3 * i);
            }
            out_d2[i] = best;
            out_pos[i] = bpos;
        }
    }
    return 0;
}

static PyObject *py_query(PyObject *self, PyObject *args)
{
    enum { NARG = 13 };
    PyObject *o[NARG];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &o[9], &o[10], &o[11], &o[12])) {
        return NULL;
    }
    static const char *names[NARG] = {"tri_sorted", "pre", "box", "link", "order", "pos", "points", "hint",
                                      "d2", "face", "closest", "pre2", "leafidx"};
    static const int writable[NARG] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0};
    Py_buffer v[NARG];
    int got = 0;
    PyObject *result = NULL;
    Py_ssize_t *leaves = NULL;
    for (; got < NARG; got++) {
        if (get_buffer(o[got], &v[got], writable[got], 8, names[got]) < 0) goto done;
    }
    Py_ssize_t k = v[0].len / 72, n_nodes = v[2].len / 48, n = v[6].len / 24;
    if (k < 1 || n_nodes < 1 || v[1].len / 128 != k || v[3].len / 16 != n_nodes || v[4].len / 8 != k ||
        v[5].len / 8 != k || v[7].len / 8 != n || v[8].len / 8 != n || v[9].len / 8 != n || v[10].len / 24 != n ||
        v[12].len / 8 != n_nodes || v[11].len % 272 != 0) {
        PyErr_SetString(PyExc_ValueError, "_closest.query: inconsistent array sizes");
        goto done;
    }
    Tree t = {(const double *)v[0].buf, (const double *)v[1].buf, (const double *)v[2].buf,
              (const int64_t *)v[3].buf, k, (const double *)v[11].buf, (const int64_t *)v[12].buf};
    const int64_t *order = (const int64_t *)v[4].buf, *pos = (const int64_t *)v[5].buf;
    int64_t *out_f = (int64_t *)v[9].buf;
    leaves = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * (size_t)n_nodes);
    if (leaves == NULL) { PyErr_NoMemory(); goto done; }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    /* out_f holds leaf positions during the query (Py_ssize_t and int64_t have the same size here) */
    rc = query_points(&t, pos, (const double *)v[6].buf, (const int64_t *)v[7].buf, n, (double *)v[8].buf,
                      (Py_ssize_t *)out_f, (double *)v[10].buf, leaves);
    if (rc == 0) {
        for (Py_ssize_t i = 0; i < n; i++) out_f[i] = out_f[i] >= 0 ? order[out_f[i]] : -1;
    }
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_SetString(PyExc_RuntimeError, "_closest.query: tree deeper than the traversal stack");
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(leaves);
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    return result;
}

/*
 * ring_candidates(ring, up, down, fid, above, near_bd, rn, roff, rdeg, q, d1, vertices, faces, points, params, who,
 *                 cand) -> count
 *   TrimeshSurface's tie candidates: for each point i with found triangle f = fid[i], the ring triangles r =
 *   ring[f, j] (r >= 0, r != f) that are near the boundary (near_bd[i]) or bend towards the point's side (up[f, j] if
 *   above[i], else down[f, j]); that pass the plane test on the reference (rdeg[r], or max(|rn[r] . q[i] - roff[r]|
 *   - dev, 0)^2 < d1[i] + thr); and whose exact squared distance to points[i] on the queried mesh (vertices, faces;
 *   Ericson's closest point) is below d1[i] + thr + margin (flat triangles always kept). params = (thr, dev,
 *   margin). Writes the pairs (i, r) in point order, then ring order, into who/cand (capacity n * k); returns their
 *   count. The tests are filters: each keeps every candidate within the tie tolerance (see facenb.distance).
 */
static PyObject *py_ring_candidates(PyObject *self, PyObject *args)
{
    enum { NARG = 17 };
    PyObject *o[NARG];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &o[9], &o[10], &o[11], &o[12], &o[13], &o[14], &o[15], &o[16])) return NULL;
    static const char *names[NARG] = {"ring", "up", "down", "fid", "above", "near_bd", "rn", "roff", "rdeg", "q",
                                      "d1", "vertices", "faces", "points", "params", "who", "cand"};
    static const int size[NARG] = {8, 1, 1, 8, 1, 1, 8, 8, 1, 8, 8, 8, 8, 8, 8, 8, 8};
    Py_buffer v[NARG];
    int got = 0, bad = 0;
    PyObject *result = NULL;
    for (; got < NARG; got++) {
        if (get_buffer(o[got], &v[got], got >= 15, size[got], names[got]) < 0) goto done;
    }
    Py_ssize_t m = v[7].len / 8, n = v[3].len / 8, nv = v[11].len / 24;
    Py_ssize_t k = m > 0 ? v[0].len / 8 / m : 0;
    if (m < 1 || v[0].len != 8 * m * k || v[1].len != m * k || v[2].len != m * k || v[4].len != n ||
        v[5].len != n || v[6].len != 24 * m || v[8].len != m || v[9].len != 24 * n || v[10].len != 8 * n ||
        v[11].len % 24 || v[12].len != 24 * m || v[13].len != 24 * n || v[14].len != 24 ||
        v[15].len < 8 * n * k || v[16].len < 8 * n * k) {
        PyErr_SetString(PyExc_ValueError, "_closest.ring_candidates: inconsistent array sizes");
        goto done;
    }
    const int64_t *ring = (const int64_t *)v[0].buf, *fid = (const int64_t *)v[3].buf;
    const int64_t *faces = (const int64_t *)v[12].buf;
    const unsigned char *up = (const unsigned char *)v[1].buf, *down = (const unsigned char *)v[2].buf;
    const unsigned char *above = (const unsigned char *)v[4].buf, *near_bd = (const unsigned char *)v[5].buf;
    const unsigned char *rdeg = (const unsigned char *)v[8].buf;
    const double *rn = (const double *)v[6].buf, *roff = (const double *)v[7].buf, *q = (const double *)v[9].buf;
    const double *d1 = (const double *)v[10].buf, *vert = (const double *)v[11].buf, *pts = (const double *)v[13].buf;
    const double *par = (const double *)v[14].buf;
    double thr = par[0], dev = par[1], margin = par[2];
    int64_t *who = (int64_t *)v[15].buf, *cand = (int64_t *)v[16].buf;
    Py_ssize_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        int64_t f = fid[i];
        if (f < 0 || f >= m) { bad = 1; break; }
        const int64_t *row = ring + k * f;
        const unsigned char *bend = (above[i] ? up : down) + k * f;
        const double *qi = q + 3 * i, *pi = pts + 3 * i;
        for (Py_ssize_t j = 0; j < k; j++) {
            int64_t r = row[j];
            if (r < 0 || r == f || !(near_bd[i] || bend[j])) continue;
            if (r >= m) { bad = 1; break; }
            if (!rdeg[r]) {
                double pl = fabs(rn[3 * r] * qi[0] + rn[3 * r + 1] * qi[1] + rn[3 * r + 2] * qi[2] - roff[r]) - dev;
                pl = pl > 0.0 ? pl : 0.0;
                if (!(pl * pl < d1[i] + thr)) continue;
            }
            double t[9], c[3];
            for (int a = 0; a < 3 && !bad; a++) {
                int64_t idx = faces[3 * r + a];
                bad = idx < 0 || idx >= nv;
                if (!bad) memcpy(t + 3 * a, vert + 3 * idx, 3 * sizeof(double));
            }
            if (bad) break;
            double ab[3] = {t[3] - t[0], t[4] - t[1], t[5] - t[2]}, ac[3] = {t[6] - t[0], t[7] - t[1], t[8] - t[2]};
            if (!too_flat(dot3(ab, ab), dot3(ab, ac), dot3(ac, ac)) &&
                !(closest_on_triangle(pi, t, c) < d1[i] + thr + margin)) continue;
            who[count] = (int64_t)i;
            cand[count++] = r;
        }
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "_closest.ring_candidates: triangle or vertex index out of range");
        goto done;
    }
    result = PyLong_FromSsize_t(count);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"ring_candidates", py_ring_candidates, METH_VARARGS,
     "ring_candidates(ring, up, down, fid, above, near_bd, rn, roff, rdeg, q, d1, vertices, faces, points, params, "
     "who, cand) -> count: TrimeshSurface's tie candidates (see the comment in _closest.c)."},
    {"build", py_build, METH_VARARGS,
     "build(tri, order, box, link, tri_sorted, pos, pre, pre2, leafidx) -> (n_nodes, n_leaves)."},
    {"query", py_query, METH_VARARGS,
     "query(tri_sorted, pre, box, link, order, pos, points, hint, d2, face, closest, pre2, leafidx): exact closest "
     "points."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_closest",
                                    "Exact closest points on a triangle mesh (see facenb.distance).", -1, methods};

PyMODINIT_FUNC PyInit__closest(void) { return PyModule_Create(&module); }
