/* Lamina: a deep learning framework in C. Include this one header. */
#ifndef LAMINA_H
#define LAMINA_H

#include "lamina/status.h"
#include "lamina/context.h"
#include "lamina/tensor.h"
#include "lamina/graph.h"
#include "lamina/ops.h"
#include "lamina/layers.h"
#include "lamina/optimizers.h"
#include "lamina/model.h"
#include "lamina/callbacks.h"
#include "lamina/idx.h"
#include "lamina/npy.h"
#include "lamina/npz.h"
#include "lamina/datasets.h"
#include "lamina/csv.h"
#include "lamina/saving.h"

#endif
