//! References: what an expression refers to (`var.x`, `node.edge[0].address`)
//! and which functions it calls, with spans, found without evaluating it.
//!
//! Used to report unknown references and functions at their exact place, to
//! order evaluation (locals, resources) and to find dependencies.

use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::template::{Directive, Element, Template};
use hcl_edit::Span as _;

use crate::diagnostics::{FileId, Span};

/// The first steps of a traversal rooted at a variable: `node.edge[0].address`
/// gives root `node`, name `edge`, `indexed` true, attr `address`.
#[derive(Debug, Clone)]
pub struct Reference {
    pub root: String,
    pub name: Option<String>,
    /// An index or splat follows the name.
    pub indexed: bool,
    /// ... and it is a splat (`[*]`, `.*`).
    pub splat: bool,
    /// The first attribute after the name (and its index, if any).
    pub attr: Option<String>,
    /// The root and name: `node.edge`.
    pub span: Span,
    /// Where `attr` is written, to point at a wrong one.
    pub attr_span: Option<Span>,
}

/// A function call.
#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub span: Span,
}

/// Everything an expression refers to.
#[derive(Debug, Clone, Default)]
pub struct ExprRefs {
    pub refs: Vec<Reference>,
    pub calls: Vec<Call>,
    /// It has an arithmetic operator (`+ - * / %`), see `checked`.
    pub arith: bool,
}

impl ExprRefs {
    /// `true` when the expression refers to nothing (a literal).
    pub fn is_static(&self) -> bool {
        self.refs.is_empty() && self.calls.is_empty()
    }
}

/// Scan an expression.
pub fn scan(file: FileId, expr: &Expression) -> ExprRefs {
    let mut s = Scanner {
        file,
        bound: Vec::new(),
        out: ExprRefs::default(),
    };
    s.expr(expr);
    s.out
}

struct Scanner {
    file: FileId,
    bound: Vec<String>,
    out: ExprRefs,
}

impl Scanner {
    fn span(&self, r: Option<std::ops::Range<usize>>) -> Span {
        Span::new(self.file, r.unwrap_or(0..0))
    }

    fn expr(&mut self, e: &Expression) {
        match e {
            Expression::Null(_)
            | Expression::Bool(_)
            | Expression::Number(_)
            | Expression::String(_) => {}
            Expression::Array(a) => a.iter().for_each(|x| self.expr(x)),
            Expression::Object(o) => {
                for (k, v) in o.iter() {
                    if let ObjectKey::Expression(ke) = k {
                        // A bare identifier key parsed as an expression is a literal name.
                        if !matches!(ke, Expression::Variable(_)) {
                            self.expr(ke);
                        }
                    }
                    self.expr(v.expr());
                }
            }
            Expression::StringTemplate(t) => self.template(t),
            Expression::HeredocTemplate(h) => self.template(&h.template),
            Expression::Parenthesis(p) => self.expr(p.inner()),
            Expression::Variable(v) => {
                let root = v.as_str().to_string();
                if !self.bound.contains(&root) {
                    self.out.refs.push(Reference {
                        root,
                        name: None,
                        indexed: false,
                        splat: false,
                        attr: None,
                        span: self.span(v.span()),
                        attr_span: None,
                    });
                }
            }
            Expression::Conditional(c) => {
                self.expr(&c.cond_expr);
                self.expr(&c.true_expr);
                self.expr(&c.false_expr);
            }
            Expression::FuncCall(f) => {
                let name = f.name.name.as_str().to_string();
                self.out.calls.push(Call {
                    name,
                    span: self.span(f.name.name.span()),
                });
                f.args.iter().for_each(|a| self.expr(a));
            }
            Expression::Traversal(t) => {
                if let Expression::Variable(v) = &t.expr {
                    let root = v.as_str().to_string();
                    if !self.bound.contains(&root) {
                        let mut name = None;
                        let mut indexed = false;
                        let mut splat = false;
                        let mut attr = None;
                        let mut attr_span = None;
                        let mut end = v.span().map(|r| r.end).unwrap_or(0);
                        for (i, op) in t.operators.iter().enumerate() {
                            match op.value() {
                                TraversalOperator::GetAttr(id) if i == 0 => {
                                    name = Some(id.as_str().to_string());
                                    end = id.span().map(|r| r.end).unwrap_or(end);
                                }
                                TraversalOperator::GetAttr(id) if attr.is_none() => {
                                    attr = Some(id.as_str().to_string());
                                    attr_span = id.span().map(|r| Span::new(self.file, r));
                                    break;
                                }
                                TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_)
                                    if i == 1 =>
                                {
                                    indexed = true;
                                }
                                TraversalOperator::AttrSplat(_)
                                | TraversalOperator::FullSplat(_)
                                    if i == 1 =>
                                {
                                    indexed = true;
                                    splat = true;
                                }
                                _ => break,
                            }
                        }
                        let start = v.span().map(|r| r.start).unwrap_or(0);
                        self.out.refs.push(Reference {
                            root,
                            name,
                            indexed,
                            splat,
                            attr,
                            span: Span::new(self.file, start..end),
                            attr_span,
                        });
                    }
                } else {
                    self.expr(&t.expr);
                }
                for op in &t.operators {
                    if let TraversalOperator::Index(ix) = op.value() {
                        self.expr(ix);
                    }
                }
            }
            Expression::UnaryOp(u) => self.expr(&u.expr),
            Expression::BinaryOp(b) => {
                use hcl_edit::expr::BinaryOperator as Op;
                if matches!(
                    b.operator.value(),
                    Op::Plus | Op::Minus | Op::Mul | Op::Div | Op::Mod
                ) {
                    self.out.arith = true;
                }
                self.expr(&b.lhs_expr);
                self.expr(&b.rhs_expr);
            }
            Expression::ForExpr(f) => {
                self.expr(&f.intro.collection_expr);
                let n = self.bound.len();
                if let Some(k) = &f.intro.key_var {
                    self.bound.push(k.as_str().to_string());
                }
                self.bound.push(f.intro.value_var.as_str().to_string());
                if let Some(k) = &f.key_expr {
                    self.expr(k);
                }
                self.expr(&f.value_expr);
                if let Some(c) = &f.cond {
                    self.expr(&c.expr);
                }
                self.bound.truncate(n);
            }
        }
    }

    fn template(&mut self, t: &Template) {
        for el in t.iter() {
            match el {
                Element::Literal(_) => {}
                Element::Interpolation(i) => self.expr(&i.expr),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(i) => {
                        self.expr(&i.if_expr.cond_expr);
                        self.template(&i.if_expr.template);
                        if let Some(e) = &i.else_expr {
                            self.template(&e.template);
                        }
                    }
                    Directive::For(f) => {
                        self.expr(&f.for_expr.collection_expr);
                        let n = self.bound.len();
                        if let Some(k) = &f.for_expr.key_var {
                            self.bound.push(k.as_str().to_string());
                        }
                        self.bound.push(f.for_expr.value_var.as_str().to_string());
                        self.template(&f.for_expr.template);
                        self.bound.truncate(n);
                    }
                },
            }
        }
    }
}

/// The references written in a `depends_on` list: each element must be a
/// plain traversal like `node.edge` or `node.edge[0]`. Returns the
/// traversals' references, or the spans of elements that are not.
pub fn static_list(file: FileId, expr: &Expression) -> Result<Vec<(Reference, Option<u64>)>, Span> {
    let Expression::Array(a) = expr else {
        return Err(Span::new(file, expr.span().unwrap_or(0..0)));
    };
    let mut out = Vec::new();
    for el in a.iter() {
        let sp = Span::new(file, el.span().unwrap_or(0..0));
        let Expression::Traversal(t) = el else {
            return Err(sp);
        };
        let Expression::Variable(v) = &t.expr else {
            return Err(sp);
        };
        let mut ops = t.operators.iter();
        let Some(TraversalOperator::GetAttr(name)) = ops.next().map(|o| o.value()) else {
            return Err(sp);
        };
        let index = match ops.next().map(|o| o.value()) {
            None => None,
            Some(TraversalOperator::Index(Expression::Number(n))) => {
                Some(n.value().as_u64().ok_or_else(|| sp.clone())?)
            }
            Some(TraversalOperator::LegacyIndex(n)) => Some(*n.value()),
            Some(_) => return Err(sp),
        };
        if ops.next().is_some() {
            return Err(sp);
        }
        out.push((
            Reference {
                root: v.as_str().to_string(),
                name: Some(name.as_str().to_string()),
                indexed: index.is_some(),
                splat: false,
                attr: None,
                span: sp,
                attr_span: None,
            },
            index,
        ));
    }
    Ok(out)
}
